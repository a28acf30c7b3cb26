"""RabbitMQ out of reach: jobs wait as pending, nothing is lost, nothing stops.

The host is a network namespace (devstack/netns.py) whose way to RabbitMQ the
test can cut and restore; needs root."""

import pytest

from devstack.netns import Hosts
from devstack.origin import Fault
from devstack.ports import wait_until
from tests.support.multihost import MultiHost
from tests.support.prerequisites import need_network_namespaces
from tests.support.stack import Stack

pytestmark = pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True)

AMQP_PORT = 5672


@pytest.fixture
def host(pg_server, s3, origin, tmp_path, broker):
    (tmp_path / "system").mkdir()
    stack = Stack(pg_server, s3, origin, tmp_path / "system", broker=broker)
    try:
        need_network_namespaces()
        with Hosts(["a"], stack.tmp / "hosts") as hosts:
            yield MultiHost(stack, hosts)
    finally:
        stack.stop()


def test_jobs_wait_pending_while_rabbitmq_is_out_of_reach(host):
    host.start_host("a")
    stack = host.stack
    assert stack.wait_for(stack.publish("exif-orientation-1.jpg"))["status"] == "completed"

    host.hosts["a"].unplug(AMQP_PORT)
    job_id = stack.publish("exif-orientation-1.jpg")
    wait_until(lambda: "claim failed" in host.logs("a"), 60, "the listener to fail to enqueue")
    # the claim was rolled back with the failed enqueue: no job is 'queued' without a message
    assert stack.job(job_id)["status"] == "pending"
    assert all(p.running() for p in host.hosts["a"].processes)

    host.hosts["a"].plug(AMQP_PORT)
    job = stack.wait_for(job_id)
    assert job["status"] == "completed", job["last_error"]
    assert job["retry_count"] == 0


@pytest.fixture
def two_hosts(pg_server, s3, origin, tmp_path, broker):
    (tmp_path / "system").mkdir()
    stack = Stack(pg_server, s3, origin, tmp_path / "system", broker=broker, JOB_LEASE_SECONDS=6)
    # RabbitMQ notices a silent client after missed heartbeats: 2 s apart here.
    stack.env["BROKER_URL"] += "?heartbeat=2"
    try:
        need_network_namespaces()
        with Hosts(["a", "b"], stack.tmp / "hosts") as hosts:
            yield MultiHost(stack, hosts)
    finally:
        stack.stop()


def test_jobs_of_a_host_cut_off_the_network_are_finished_by_the_other(two_hosts, origin, origin_root):
    """Until the broker and the database notice that b is gone, b's sessions hold what it
    had taken: RabbitMQ its unacknowledged messages (heartbeats), PostgreSQL the rows of a
    transaction b had open (idle_in_transaction_session_timeout: test_db_pool.py).

    RabbitMQ only: b reaches PostgreSQL through a forwarder, whose own socket answers the
    server's keepalive probes, so a cut-off host's broker sessions would look alive here."""
    cluster, stack = two_hosts, two_hosts.stack
    cluster.start_host("a")
    cluster.start_host("b", listener=False)
    keys = []
    for i in range(8):
        key = f"cut-{cluster.hosts['b'].run_id}-{i}.jpg"
        (origin_root / key).write_bytes((origin_root / "exif-orientation-1.jpg").read_bytes())
        origin.faults[key] = Fault(delay=2.0, times=1)  # the first download is slow: steps are in flight
        keys.append(key)
    jobs = [stack.publish(key) for key in keys]
    held = wait_until(lambda: cluster.running_step("b", jobs), 60, "host b to be working on a job", 0.05)
    cluster.hosts["b"].cut()  # b keeps running, but nothing it sends arrives any more
    try:
        for job_id in jobs:
            job = stack.wait_for(job_id, timeout=120)
            assert job["status"] == "completed", job["last_error"]
        assert stack.job(held)["retry_count"] == 1, "b's running step is taken over once its lease runs out"
        assert all(p.running() for p in cluster.hosts["b"].processes)  # cut off, not dead
    finally:
        cluster.hosts["b"].kill()  # its processes would wait for their timeouts on shutdown

"""RabbitMQ out of reach: jobs wait as pending, nothing is lost, nothing stops.

The host is a network namespace (devstack/netns.py) whose way to RabbitMQ the
test can cut and restore; needs root."""

import pytest

from devstack.netns import Hosts
from devstack.ports import wait_until
from tests.multihost import MultiHost
from tests.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True)]

AMQP_PORT = 5672


@pytest.fixture
def host(pg_server, s3, origin, tmp_path, broker):
    (tmp_path / "system").mkdir()
    stack = Stack(pg_server, s3, origin, tmp_path / "system", broker=broker)
    try:
        with Hosts(["a"], tmp_path / "hosts") as hosts:
            yield MultiHost(stack, hosts)
    finally:
        stack.stop()


def test_jobs_wait_pending_while_rabbitmq_is_out_of_reach(host):
    host.start_host("a")
    stack = host.stack
    assert stack.wait_for(stack.publish("exif-orientation-1.jpg"))["status"] == "completed"

    host.hosts["a"].unplug(AMQP_PORT)
    job_id = stack.publish("exif-orientation-1.jpg")
    wait_until(lambda: "sweep failed" in host.logs("a"), 60, "the listener to fail to enqueue")
    # the claim was rolled back with the failed enqueue: no job is 'queued' without a message
    assert stack.job(job_id)["status"] == "pending"
    assert all(p.running() for p in host.hosts["a"].processes)

    host.hosts["a"].plug(AMQP_PORT)
    job = stack.wait_for(job_id)
    assert job["status"] == "completed", job["last_error"]
    assert job["retry_count"] == 0

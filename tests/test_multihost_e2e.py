"""Workers on several hosts (network namespaces with their own scratch
directories) against one database and one bucket, on both brokers.

Needs root, to make network namespaces (CI runs as root)."""

import shutil
import time

import pytest

from devstack.netns import Hosts
from devstack.origin import Fault
from devstack.ports import wait_until
from tests.prerequisites import need_network_namespaces
from tests.multihost import MultiHost, published_objects
from tests.stack import BROKERS, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("broker", BROKERS, indirect=True)]

#: Short leases, so a lost host's jobs are rescued within seconds (bound: lease + lease/4).
LEASE_SECONDS = 6
#: Sources of different kinds, as they come from RAID.
IMAGES = ["exif-orientation-1.jpg", "exif-orientation-6.jpg", "png-alpha.png", "progressive.jpg",
          "png-palette.png", "adobe-rgb.jpg"]


@pytest.fixture(scope="module")
def one_host_objects(pg_server, s3, origin, tmp_path_factory):
    """What a single host publishes for IMAGES: the reference for the multi-host runs."""
    stack = Stack(pg_server, s3, origin, tmp_path_factory.mktemp("one-host"))
    try:
        stack.start_workers(1, 2)
        stack.start_listener()
        jobs = {image: stack.publish(image) for image in IMAGES}
        objects = {}
        for image, job_id in jobs.items():
            job = stack.wait_for(job_id)
            assert job["status"] == "completed", (image, job["last_error"])
            objects[image] = published_objects(stack, job_id)
        return objects
    finally:
        stack.stop()


@pytest.fixture
def cluster(pg_server, s3, origin, tmp_path, broker):
    (tmp_path / "system").mkdir()
    stack = Stack(pg_server, s3, origin, tmp_path / "system", broker=broker, JOB_LEASE_SECONDS=LEASE_SECONDS)
    try:
        need_network_namespaces()
        with Hosts(["a", "b", "c"], stack.tmp / "hosts") as hosts:
            yield MultiHost(stack, hosts)
    finally:
        stack.stop()


def test_steps_of_one_job_on_different_hosts_publish_the_same_objects_once(cluster, one_host_objects):
    # Host a fetches and uploads, host b renders: every job crosses hosts twice,
    # and b has none of a's files but what the bucket holds.
    routes = {"STAGE_QUEUES": "variant:publish-variant"}
    cluster.start_host("a", queues=["publish"], **routes)
    cluster.start_host("b", listener=False, queues=["publish-variant"], **routes)
    stack = cluster.stack
    jobs = {image: stack.publish(image) for image in IMAGES}

    for image, job_id in jobs.items():
        job = stack.wait_for(job_id)
        assert job["status"] == "completed", (image, job["last_error"])
        assert job["retry_count"] == 0, job["last_error"]
        # each step ran once, on the host it was routed to
        assert [cluster.step_runs("a", job_id, s) for s in ("fetch", "variant", "upload")] == [1, 0, 1]
        assert [cluster.step_runs("b", job_id, s) for s in ("fetch", "variant", "upload")] == [0, 1, 0]
        assert published_objects(stack, job_id) == one_host_objects[image], image
        wait_until(lambda: stack.keys(f"_staging/{job_id}/") == [], 30, f"job {job_id}'s staging clean-up")
    # one published file per request, nothing else in the bucket for these files
    files = stack.sql("SELECT f.id::text, f.publish_status, count(j.*) AS jobs FROM auction_files f "
                      "JOIN publish_jobs j ON j.file_id = f.id GROUP BY f.id")
    assert {(f["publish_status"], f["jobs"]) for f in files} == {("published", 1)}
    for f in files:
        assert len(stack.keys(f"media/{f['id']}/")) == 2
    # no shared scratch: b received the sources through the bucket and kept nothing
    assert list(cluster.hosts["b"].scratch.rglob("*source*")) == []


def test_jobs_of_a_host_that_dies_are_finished_by_the_others(cluster, origin, origin_root):
    for name in "abc":
        cluster.start_host(name, threads=2)
    stack = cluster.stack
    keys = []
    for i in range(9):
        key = f"lot-{cluster.hosts['a'].run_id}-{i}.jpg"
        shutil.copy(origin_root / "exif-orientation-1.jpg", origin_root / key)
        origin.faults[key] = Fault(delay=2.0, times=1)  # the first download is slow: steps are in flight
        keys.append(key)
    jobs = [stack.publish(key) for key in keys]

    held = wait_until(lambda: cluster.running_step("b", jobs), 60, "host b to be working on a job", 0.05)
    cluster.hosts["b"].kill()  # power cut: no shutdown, no goodbye
    killed_at = time.monotonic()
    assert cluster.hosts["b"].pids() == []

    rescue_bound = LEASE_SECONDS * 1.25 + max(1.0, LEASE_SECONDS / 4)
    for job_id in jobs:
        job = stack.wait_for(job_id, timeout=rescue_bound + 90)  # 90 s for the work itself on a busy machine
        assert job["status"] == "completed", job["last_error"]
        assert job["publish_status"] == "published"
    print(f"\n{stack.broker}: all jobs done {time.monotonic() - killed_at:.1f}s after host b died "
          f"(rescue bound {rescue_bound:.1f}s)")
    # the step b was running when it died was taken over once its lease ran out
    job = stack.job(held)
    assert job["retry_count"] == 1, job
    assert "lease ran out" in job["last_error"] or "did not finish" in job["last_error"], job["last_error"]
    assert cluster.step_runs("b", held, "fetch") == 1 and cluster.step_runs("b", held, "upload") == 0
    for job_id in jobs:
        wait_until(lambda: stack.keys(f"_staging/{job_id}/") == [], 30, f"job {job_id}'s staging clean-up")
        assert len(stack.job(job_id)["variants"]) == 2


def test_a_burst_is_shared_by_the_hosts(cluster):
    # What `make bench-scale` measures at size: each host takes part of one burst.
    for name in "ab":
        cluster.start_host(name, listener=False, threads=1, VIPS_CONCURRENCY=1)
    for name in "ab":
        wait_until(lambda: "ready for action" in cluster.logs(name), 120, f"host {name}'s worker")
    stack = cluster.stack
    stack.start_listener()
    jobs = [stack.publish("exif-orientation-1.jpg") for _ in range(8)]
    for job_id in jobs:
        assert stack.wait_for(job_id)["status"] == "completed"
    done_on = {name: sum(cluster.step_runs(name, j, "variant") for j in jobs) for name in "ab"}
    assert sum(done_on.values()) == len(jobs)
    assert done_on["a"] > 0 and done_on["b"] > 0, done_on


def test_a_host_with_a_cpu_budget_runs_every_process_inside_it(pg_server, s3, origin, tmp_path, broker):
    # `make bench-scale` gives each host a CPU budget (a cgroup quota), as separate
    # machines of one size have: the workers dramatiq forks must be counted too.
    need_network_namespaces()
    stack = Stack(pg_server, s3, origin, tmp_path, broker=broker)
    try:
        with Hosts(["a"], tmp_path / "hosts", cores_per_host=0.5) as hosts:
            budget = hosts["a"].cpu_limit
            quota = budget.path / ("cpu.max" if budget.v2 else "cpu.cfs_quota_us")
            assert quota.read_text().split()[0] == "50000"
            MultiHost(stack, hosts).start_host("a", listener=False, processes=2, threads=1)
            wait_until(lambda: hosts["a"].logs().count("ready for action") >= 2, 120, "host a's workers")
            stack.start_listener()
            job = stack.wait_for(stack.publish("exif-orientation-6.jpg"))
            assert job["status"] == "completed", job["last_error"]
            host_pids = set(hosts["a"].pids())
            assert len(host_pids) >= 3  # dramatiq's main process and its two worker processes
            assert host_pids <= set(map(int, (budget.path / "cgroup.procs").read_text().split()))
        assert not budget.path.exists()  # removed with the host
    finally:
        stack.stop()

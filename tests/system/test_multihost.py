"""Workers on several hosts (network namespaces with their own scratch
directories) against one database and one bucket, on both brokers.

Needs root, to make network namespaces (CI runs as root)."""

import time

import pytest

from devstack.netns import Hosts
from devstack.origin import Fault
from devstack.ports import wait_until
from tests.faults import harness
from tests.support.multihost import MultiHost, published_objects
from tests.support.prerequisites import need_network_namespaces
from tests.support.stack import BROKERS, Stack

pytestmark = pytest.mark.parametrize("broker", BROKERS, indirect=True)

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


def test_every_step_of_a_job_runs_on_the_host_that_fetched_it(cluster, one_host_objects):
    # Two hosts share one database and one bucket, and nothing else: each job's
    # original and variants pass between its steps on one host, never through the bucket.
    for name in "ab":
        cluster.start_host(name, listener=name == "a", threads=1)
    stack = cluster.stack
    jobs = {(image, i): stack.publish(image) for i in range(2) for image in IMAGES}

    ran_on = {}
    for (image, _), job_id in jobs.items():
        job = stack.wait_for(job_id)
        assert job["status"] == "completed", (image, job["last_error"])
        assert job["retry_count"] == 0, job["last_error"]
        runs = {name: [cluster.step_runs(name, job_id, s) for s in ("fetch", "variant", "upload")] for name in "ab"}
        (host,) = [name for name, counts in runs.items() if counts == [1, 1, 1]]
        assert runs[{"a": "b", "b": "a"}[host]] == [0, 0, 0], runs
        ran_on[job_id] = host
        assert published_objects(stack, job_id) == one_host_objects[image], image
    assert set(ran_on.values()) == {"a", "b"}  # both hosts took part
    # The bucket holds exactly the published objects; each host's scratch folders are gone.
    files = stack.sql("SELECT f.id::text, f.publish_status, count(j.*) AS jobs FROM auction_files f "
                      "JOIN publish_jobs j ON j.file_id = f.id GROUP BY f.id")
    assert {(f["publish_status"], f["jobs"]) for f in files} == {("published", 1)}
    for f in files:
        assert len(stack.keys(f"media/{f['id']}/")) == 2
    assert stack.keys("_staging/") == []
    for name in "ab":
        # Every attempt's folder goes; the workers' metrics files live in the scratch's metrics/ folder,
        # beside the file that names the host.
        wait_until(lambda name=name: {p.name for p in cluster.hosts[name].scratch.iterdir()} <= {"metrics", ".host-id"},
                   30, f"host {name}'s scratch to empty")


def test_jobs_of_a_host_that_dies_are_finished_by_the_others(cluster, origin, origin_root):
    for name in "abc":
        cluster.start_host(name, threads=2)
    stack = cluster.stack
    batch = harness.Batch(stack, f"host-killed-{stack.broker}", origin_root)
    keys = []
    for _i in range(9):
        key = batch.source("exif-orientation-1.jpg")
        origin.faults[key] = Fault(delay=2.0, times=1)  # the first download is slow: steps are in flight
        keys.append(key)
    jobs = [batch.add(key) for key in keys]
    batch.faults = 1

    held = wait_until(lambda: cluster.running_step("b", jobs), 60, "host b to be working on a job", 0.05)
    # What the database says host b was running when it died is the truth the rescue
    # acts on; b is frozen first so that nothing it does after the reading changes it.
    cluster.hosts["b"].freeze()
    running_on_b = cluster.running_in_database("b", jobs)
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
    # The step b was running when it died counts as an attempt; the job started again
    # from its first step on another host. Jobs only waiting on b were charged nothing.
    job = stack.job(held)
    assert job["retry_count"] == 1, job
    assert "lease ran out" in job["last_error"] or "did not finish" in job["last_error"], job["last_error"]
    assert cluster.step_runs("b", held, "fetch") == 1 and cluster.step_runs("b", held, "upload") == 0
    assert held in running_on_b
    for job_id in jobs:
        job = stack.job(job_id)
        assert len(job["variants"]) == 2
        assert job["retry_count"] == (1 if job_id in running_on_b else 0), job
        assert sum(cluster.step_runs(name, job_id, "upload") for name in "ac") == 1
    batch.outcome().assert_clean()  # in the fault summary: nothing lost, stuck or duplicated


def test_a_burst_is_shared_by_the_hosts(cluster):
    # What `make bench-scale` measures at size: each host takes part of one burst.
    for name in "ab":
        cluster.start_host(name, listener=False, threads=1, VIPS_CONCURRENCY=1)
    for name in "ab":
        wait_until(lambda name=name: "ready for action" in cluster.logs(name), 120, f"host {name}'s worker")
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

"""The database and the S3 server go away while jobs run: everything
reconnects on its own and every job completes, once."""

import time

import pytest

from devstack.origin import Fault
from devstack.ports import wait_until
from devstack.s3 import SeaweedS3
from tests.faults import harness
from tests.support.stack import Stack

pytestmark = pytest.mark.faults_slow

#: How long the S3 server stays down.
S3_OUTAGE_SECONDS = 30


def count(stack, job_ids, where) -> int:
    return stack.sql(f"SELECT count(*) AS n FROM publish_jobs WHERE id = ANY(%s) AND {where}",
                     (list(job_ids),))[0]["n"]


def test_pg_terminate_backend_on_every_connection(fault_stack, batch, origin):
    stack = fault_stack()
    jobs = batch(stack, "pg-terminate-backend")
    for i in range(12):
        key = jobs.source("exif-orientation-1.jpg" if i % 2 else "progressive.jpg")
        if i % 4 == 0:
            origin.faults[key] = Fault(delay=1, times=1)
        jobs.add(key)
    harness.start_workers(stack)
    stack.start_listener()
    # Cut every connection at three moments: jobs starting, some done, half done.
    for moment in ("status = 'processing'", "status = 'completed'", "status = 'completed'"):
        needed = 1 if jobs.faults < 2 else 6
        try:
            wait_until(lambda moment=moment, needed=needed: count(stack, jobs.expected, moment) >= needed, 60, moment)
        except TimeoutError:
            break
        assert harness.terminate_connections(stack) > 0
        jobs.faults += 1
    jobs.wait(timeout=240)
    result = jobs.outcome()
    result.assert_clean()
    assert result.completed == 12
    # Both kinds of process are still there, reconnected.
    assert stack.listener.running() and all(p.running() for p in stack.extra_processes)


@pytest.fixture
def own_s3(tmp_path):
    """An S3 server of this test's own, since it is stopped and started again."""
    server = SeaweedS3(tmp_path / "seaweed", bucket="media").start()
    yield server
    server.stop()


def test_s3_unreachable_for_30_seconds(pg_server, own_s3, origin, origin_root, tmp_path, batch):
    # Backoff 1-8 s: twelve retries span well over the outage.
    env = {**harness.FAST_ENV, "RETRY_MIN_BACKOFF_MS": "1000", "RETRY_MAX_BACKOFF_MS": "8000"}
    stack = Stack(pg_server, own_s3, origin, tmp_path, **env)
    try:
        jobs = batch(stack, "s3-outage-30s")
        for i in range(8):
            key = jobs.source("exif-orientation-1.jpg" if i % 2 else "progressive.jpg")
            if i >= 4:
                origin.faults[key] = Fault(delay=2, times=1)  # keep some in flight
            jobs.add(key, max_retries=12)
        harness.start_workers(stack)
        stack.start_listener()
        wait_until(lambda: count(stack, jobs.expected, "status = 'processing'") >= 1, 60, "jobs in flight")
        own_s3.stop()
        jobs.faults = 1
        time.sleep(S3_OUTAGE_SECONDS)  # the outage itself
        own_s3.start()
        jobs.wait(timeout=240)
        result = jobs.outcome()
        result.assert_clean()
        assert result.completed == 8
        assert any(r["retry_count"] > 0 for r in result.rows)  # the outage was felt, and retried
    finally:
        harness.stop_all(stack)
        stack.stop()

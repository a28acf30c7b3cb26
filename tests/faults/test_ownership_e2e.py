"""Ownership end to end: every broker message delivered twice, and a worker
frozen past its lease that wakes up after its job was given to another."""

import signal
import threading

import pytest

from devstack.origin import Fault
from devstack.ports import wait_until
from tests.faults import harness

# Copies a broker message under a new id, as a broker that redelivers would, and announces it.
DUPLICATE = """
    WITH copy AS (
        INSERT INTO dramatiq.queue (message_id, queue_name, state, mtime, message)
        SELECT n.id, q.queue_name, 'queued', now(), jsonb_set(q.message, '{message_id}', to_jsonb(n.id::text))
          FROM dramatiq.queue q, (SELECT gen_random_uuid() AS id) n
         WHERE q.message_id = %s
        RETURNING message_id, queue_name, message
    )
    SELECT message_id::text, pg_notify('dramatiq.' || queue_name || '.enqueue', message::text) FROM copy
"""


class Duplicator:
    """Delivers every message of the stack's broker a second time."""

    def __init__(self, stack):
        self.stack, self.copies, self._seen = stack, 0, set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.05):
            for row in self.stack.sql("SELECT message_id::text AS id FROM dramatiq.queue"):
                if row["id"] in self._seen:
                    continue
                self._seen.add(row["id"])
                for copy in self.stack.sql(DUPLICATE, (row["id"],)):
                    self._seen.add(copy["message_id"])
                    self.copies += 1

    def stop(self):
        self._stop.set()
        self._thread.join()


def test_every_message_delivered_twice_publishes_once(fault_stack, batch, origin):
    stack = fault_stack()
    jobs = batch(stack, "duplicate-delivery")
    for i in range(8):
        key = jobs.source("exif-orientation-1.jpg" if i % 2 else "progressive.jpg")
        if i % 4 == 0:
            origin.faults[key] = Fault(status=503, times=1)  # its retry races the duplicate of its fetch
        jobs.add(key)
    duplicator = Duplicator(stack)
    harness.start_workers(stack)
    stack.start_listener()
    jobs.wait()
    duplicator.stop()
    jobs.faults = duplicator.copies
    result = jobs.outcome()
    result.assert_clean()
    assert result.completed == 8
    assert duplicator.copies >= 8 * 3  # at least every step's first message was delivered twice


@pytest.mark.faults_slow
def test_frozen_worker_that_wakes_up_after_rescue_changes_nothing(fault_stack, batch, origin):
    stack = fault_stack(ORIGIN_READ_TIMEOUT=60)
    jobs = batch(stack, "stale-worker")
    key = jobs.source("exif-orientation-1.jpg")
    origin.faults[key] = Fault(delay=10, times=1)  # the download is in flight while the worker is frozen
    job_id = jobs.add(key)
    frozen = harness.start_workers(stack, processes=1)
    stack.start_listener()
    first = wait_until(lambda: (lambda r: r if r["status"] == "processing" else None)(stack.job(job_id)),
                       60, "the first attempt to start")
    frozen.signal(signal.SIGSTOP)  # heartbeat and all: presumed dead once its lease runs out
    jobs.faults = 1
    try:
        harness.start_workers(stack, processes=1)
        row = stack.wait_for(job_id)
        assert row["status"] == "completed" and row["attempt_token"] != first["attempt_token"]
        assert row["retry_count"] == 1 and "lease ran out" in row["last_error"]
    finally:
        frozen.signal(signal.SIGCONT)
    # The old worker goes on where it was and finds the job is no longer its own: it
    # finishes its step or fails (its scratch files were cleaned up by the new attempt),
    # and either way its result is refused.
    refused = ("finished for an attempt that was replaced", "failed (stale attempt)")
    try:
        wait_until(lambda: any(r in frozen.log() for r in refused), 60, "the woken worker to notice it lost the job")
    except TimeoutError:
        raise AssertionError(frozen.log()[-5000:])
    result = jobs.outcome()
    result.assert_clean()
    assert stack.job(job_id)["completed_at"] == row["completed_at"]  # untouched by the stale worker

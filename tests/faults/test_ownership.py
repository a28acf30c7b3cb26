"""Ownership end to end: every broker message delivered twice, and a worker
frozen past its lease that wakes up after its job was given to another."""

import signal

import pytest

from devstack.origin import Fault
from devstack.ports import wait_until
from tests.faults import harness

# Every message the broker stores is stored a second time under a new id, and
# announced, as a broker that redelivers would: a trigger, so no message escapes it.
DUPLICATE_EVERY_MESSAGE = """
    CREATE FUNCTION test_duplicate_message() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        copy_id uuid := gen_random_uuid();
        copy jsonb;
    BEGIN
        IF coalesce((NEW.message -> 'options' ->> 'test_duplicate')::boolean, false) THEN
            RETURN NULL;
        END IF;
        copy := jsonb_set(jsonb_set(NEW.message, '{message_id}', to_jsonb(copy_id::text)),
                          '{options,test_duplicate}', 'true');
        INSERT INTO dramatiq.queue (message_id, queue_name, state, mtime, message)
        VALUES (copy_id, NEW.queue_name, 'queued', now(), copy);
        PERFORM pg_notify('dramatiq.' || NEW.queue_name || '.enqueue', copy::text);
        RETURN NULL;
    END $$;
    CREATE TRIGGER test_duplicate_message AFTER INSERT ON dramatiq.queue
        FOR EACH ROW EXECUTE FUNCTION test_duplicate_message();
"""
COPIES = "SELECT count(*) AS n FROM dramatiq.queue WHERE (message -> 'options' ->> 'test_duplicate')::boolean"


def test_every_message_delivered_twice_publishes_once(fault_stack, batch, origin):
    stack = fault_stack()
    jobs = batch(stack, "duplicate-delivery")
    for i in range(8):
        key = jobs.source("exif-orientation-1.jpg" if i % 2 else "progressive.jpg")
        if i % 4 == 0:
            origin.faults[key] = Fault(status=503, times=1)  # its retry races the duplicate of its fetch
        jobs.add(key)
    stack.sql(DUPLICATE_EVERY_MESSAGE)
    harness.start_workers(stack)
    stack.start_listener()
    jobs.wait()
    jobs.faults = stack.sql(COPIES)[0]["n"]
    result = jobs.outcome()
    result.assert_clean()
    assert result.completed == 8
    # At least every job's first step was delivered twice (the later steps are handed to the fetching
    # process's threads, never stored: publisher/jobs/local_steps.py).
    assert jobs.faults >= 8


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
        raise AssertionError(frozen.log()[-5000:]) from None
    result = jobs.outcome()
    result.assert_clean()
    assert stack.job(job_id)["completed_at"] == row["completed_at"]  # untouched by the stale worker

"""A job's later steps run in the worker process that fetched it, handed straight to its threads
(publisher/jobs/local_steps.py): the broker carries one message per job, its first step."""

import collections
import re

import pytest

from tests.support.stack import BROKERS

SOURCES = ("exif-orientation-6.jpg", "png-alpha.png", "exif-orientation-1.jpg", "exif-orientation-3.jpg")


def test_the_postgres_broker_carries_only_each_jobs_first_step(stack):
    jobs = [stack.publish(key) for key in SOURCES]
    for job_id in jobs:
        row = stack.wait_for(job_id)
        assert row["status"] == "completed" and row["retry_count"] == 0, row["last_error"]
        assert set(row["variants"]) == {"thumb", "display"}
    messages = collections.defaultdict(list)
    for m in stack.sql("SELECT message->>'actor_name' AS actor, (message->'args'->>0)::bigint AS job_id, state "
                       "FROM dramatiq.queue"):
        messages[m["job_id"]].append((m["actor"], m["state"]))
    assert messages == {job_id: [("fetch", "done")] for job_id in jobs}


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_a_handed_step_is_acked_by_no_consumer_on_either_broker(stack):
    jobs = [stack.publish(key) for key in SOURCES]
    for job_id in jobs:
        assert stack.wait_for(job_id)["status"] == "completed"
    logs = stack.logs()
    for job_id in jobs:
        assert re.search(rf"\bjob={job_id} file=\S+ stage=upload started\b", logs), job_id
    # Dramatiq says so when a consumer's ack or nack raises.
    assert "Unhandled error during post_process_message" not in logs
    assert "Traceback" not in logs, logs[logs.index("Traceback") - 600:][:3000]

"""A step's end begins the next step on the same host (publisher_pass_step): the job never waits
between steps for a message, and only the attempt's running step may pass it on. A worker that
stops hands the step it will not run back (publisher_hand_back_step)."""

import pytest

from tests.support.job_sql import (
    LEASE,
    TIME_LIMIT,
    begin,
    claimed_job,
    expire_lease,
    file_of,
    heartbeat,
    job,
    one,
    rescue,
)


def pass_step(cur, job_id, token, stage, next_stage, artifacts="{}"):
    return one(cur, "SELECT publisher_pass_step(%s, %s, %s, %s, %s, %s, %s)", job_id, token, stage, next_stage,
               artifacts, LEASE, TIME_LIMIT)


def hand_back(cur, job_id, token, stage):
    return one(cur, "SELECT publisher_hand_back_step(%s, %s, %s)", job_id, token, stage)


@pytest.fixture
def fetching(cur):
    """A job whose fetch runs on host-a."""
    job_id, token = claimed_job(cur)
    assert begin(cur, job_id, token, "fetch") == "run"
    return job_id, token


def test_passing_a_step_on_begins_the_next_on_the_same_host_under_a_lease(cur, fetching):
    job_id, token = fetching
    assert pass_step(cur, job_id, token, "fetch", "variant", '{"source": {"file": "source"}}') == "run"
    row = job(cur, job_id)
    assert (row["status"], row["stage"], row["host_id"]) == ("processing", "variant", "host-a")
    assert row["step_started_at"] is not None and row["artifacts"] == {"source": {"file": "source"}}
    assert one(cur, "SELECT lease_expires_at > now() AND step_deadline > now() FROM publish_jobs WHERE id = %s",
               job_id)
    assert heartbeat(cur, job_id, token)  # the process it was handed to keeps it
    assert begin(cur, job_id, token, "variant") == "busy"  # a stray message of the step runs nothing
    assert pass_step(cur, job_id, token, "variant", "upload", '{"variants": {}}') == "run"
    assert job(cur, job_id)["artifacts"] == {"source": {"file": "source"}, "variants": {}}


@pytest.mark.parametrize("stage, next_stage", [
    ("variant", "upload"),   # not the job's stage
    ("fetch", "upload"),     # skips a step
    ("fetch", "fetch"),      # goes nowhere
])
def test_only_the_running_step_passes_to_the_one_after_it(cur, fetching, stage, next_stage):
    job_id, token = fetching
    assert pass_step(cur, job_id, token, stage, next_stage) == "stale"
    row = job(cur, job_id)
    assert (row["stage"], row["artifacts"]) == ("fetch", None)


def test_a_replaced_attempt_passes_nothing_on(cur, fetching):
    job_id, old = fetching
    expire_lease(cur, job_id)
    (rescued,) = rescue(cur)
    assert pass_step(cur, job_id, old, "fetch", "variant") == "stale"
    assert pass_step(cur, job_id, rescued["token"], "fetch", "variant") == "stale"  # its fetch has not begun
    assert job(cur, job_id)["stage"] == "fetch"


def test_a_file_deleted_while_its_step_ran_fails_the_job_instead_of_going_on(cur, fetching):
    job_id, token = fetching
    cur.execute("UPDATE auction_files SET deleted_at = now() WHERE id = %s", (file_of(cur, job_id)["id"],))
    assert pass_step(cur, job_id, token, "fetch", "variant") == "failed"
    row = job(cur, job_id)
    assert row["status"] == "failed" and "deleted" in row["last_error"]


def test_a_step_handed_back_waits_for_its_message_and_then_runs_once(cur, fetching):
    job_id, token = fetching
    assert pass_step(cur, job_id, token, "fetch", "variant") == "run"
    assert hand_back(cur, job_id, token, "variant") is True
    row = job(cur, job_id)
    assert (row["status"], row["stage"], row["step_started_at"], row["lease_expires_at"]) == (
        "processing", "variant", None, None)
    assert hand_back(cur, job_id, token, "variant") is False  # nothing begun to hand back
    assert begin(cur, job_id, token, "variant") == "run"  # the host's next process takes the message
    assert begin(cur, job_id, token, "variant") == "busy"


def test_only_the_attempt_whose_step_was_passed_on_hands_it_back(cur, fetching):
    job_id, token = fetching
    assert pass_step(cur, job_id, token, "fetch", "variant") == "run"
    assert hand_back(cur, job_id, "00000000-0000-0000-0000-000000000000", "variant") is False
    assert hand_back(cur, job_id, token, "upload") is False
    assert job(cur, job_id)["step_started_at"] is not None


def test_finalize_records_the_imaging_facts_with_the_publication_and_keeps_them_when_given_none(cur):
    from tests.support.job_sql import claim, new_file, run_to_upload, worker_beat

    worker_beat(cur)
    file_id = new_file(cur)

    def publish(recipe, placeholder, colour):
        job_id = one(cur, "INSERT INTO publish_jobs (file_id) VALUES (%s) RETURNING id", file_id)
        (token,) = [c["token"] for c in claim(cur) if c["job_id"] == job_id]
        run_to_upload(cur, job_id, token)
        key = f"media/{file_id}/display-{job_id}.webp"
        one(cur, "SELECT publisher_track_object(%s, %s, %s)", job_id, token, key)
        assert one(cur, "SELECT publisher_finalize(%s, %s, %s, 800, 600, %s, %s, %s)", job_id, token,
                   f'{{"display": {{"key": "{key}"}}}}', recipe, placeholder, colour) == "completed"
        return one(cur, "SELECT recipe, placeholder, dominant_color, publish_status FROM auction_files WHERE id = %s",
                   file_id)

    first = {"recipe": "r1", "placeholder": "data:image/webp;base64,AAAA", "dominant_color": "#102030",
             "publish_status": "published"}
    assert publish("r1", "data:image/webp;base64,AAAA", "#102030") == first
    assert publish(None, None, None) == first
    assert publish("r2", None, "#000000") == {
        "recipe": "r2", "placeholder": None, "dominant_color": "#000000", "publish_status": "published"}

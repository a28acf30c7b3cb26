"""What a worker can do with the state functions, whatever it passes them: the
worker role (publisher_worker) can read every job's attempt token (the queue's
messages carry them too), so these functions must bound what any caller of that
role can achieve. A job publishes only keys in its own file's folder that its
upload tracked; maintenance purging a file removes nothing outside that folder;
the durations it passes are capped; the start-over limit is not its to choose."""

import json
from datetime import timedelta

import psycopg2
import psycopg2.errors
import psycopg2.extras
import pytest

from tests.support.job_sql import begin, claimed_job, cursor, end, new_file, one, run_to_upload


@pytest.fixture
def worker(schema_db):
    """A connection of the worker role, autocommit."""
    _, url = schema_db
    conn = psycopg2.connect(url)
    conn.autocommit = True
    conn.cursor().execute("SET ROLE publisher_worker")
    yield cursor(conn)
    conn.close()


def variants_naming(*keys):
    return {f"v{i}": {"key": k, "formats": {"webp": {"key": k}}} for i, k in enumerate(keys)}


def file_of_job(cur, job_id):
    return one(cur, "SELECT file_id::text FROM publish_jobs WHERE id = %s", job_id)


def published_file(cur, name="thumb-b.webp"):
    """Another file, published with one object in its folder."""
    other = new_file(cur, "other.jpg")
    key = f"media/{other}/{name}"
    cur.execute("UPDATE auction_files SET publish_status = 'published', published_at = now(), variants = %s "
                "WHERE id = %s", (json.dumps(variants_naming(key)), other))
    return other, key


def try_finalize(worker, job_id, token, variants):
    try:
        return one(worker, "SELECT publisher_finalize(%s, %s, %s, 10, 10)", job_id, token,
                   psycopg2.extras.Json(variants))
    except psycopg2.Error as e:
        return type(e).__name__


def test_a_worker_cannot_finalize_a_job_with_keys_its_upload_did_not_track_in_its_files_folder(cur, worker):
    other, other_key = published_file(cur)
    job_id, token = claimed_job(cur)
    run_to_upload(cur, job_id, token)
    mine = file_of_job(cur, job_id)
    tracked = f"media/{mine}/thumb-1.webp"
    one(worker, "SELECT publisher_track_object(%s, %s, %s)", job_id, token, tracked)
    for keys in ([other_key], [tracked, other_key], [f"elsewhere/{other}/x.webp"], [f"../{mine}/x.webp"],
                 [f"media/{mine}/never-tracked.webp"], [tracked, f"media/{mine}/never-tracked.webp"]):
        assert try_finalize(worker, job_id, token, variants_naming(*keys)) != "completed", keys
        assert one(cur, "SELECT status FROM publish_jobs WHERE id = %s", job_id) == "processing"
        assert one(cur, "SELECT variants FROM auction_files WHERE id = %s", mine) is None
    assert one(cur, "SELECT variants FROM auction_files WHERE id = %s", other) == variants_naming(other_key)
    # The keys its upload tracked, in its own folder, publish.
    assert try_finalize(worker, job_id, token, variants_naming(tracked)) == "completed"


def test_purging_a_deleted_file_hands_maintenance_only_keys_in_that_files_folder(cur):
    other, other_key = published_file(cur)
    gone = new_file(cur, "gone.jpg")
    own = f"media/{gone}/thumb-a.webp"
    # However its variants came to name another file's key (an earlier release, a hand edit).
    cur.execute("UPDATE auction_files SET variants = %s, deleted_at = now() - interval '400 days' WHERE id = %s",
                (json.dumps(variants_naming(own, other_key, f"media/{other}/../{gone}/x.webp")), gone))
    cur.execute("BEGIN")
    try:
        row = one(cur, "SELECT * FROM publisher_lock_file_for_purge(%s, '30 days')", gone)
    finally:
        cur.execute("ROLLBACK")
    assert row["keys"] == [own]


LONG = "100 years"


def moments(cur, job_id):
    return one(cur, "SELECT lease_expires_at - now() AS lease, step_deadline - now() AS deadline, "
                    "next_attempt_at - now() AS delay FROM publish_jobs WHERE id = %s", job_id)


def test_the_durations_a_worker_passes_are_capped(cur, worker):
    job_id, token = claimed_job(cur)
    assert one(worker, "SELECT publisher_defer_fetch(%s, %s, %s)", job_id, token, LONG) is True
    assert moments(cur, job_id)["delay"] <= timedelta(days=1)
    assert one(worker, "SELECT outcome FROM publisher_begin_step(%s, %s, 'fetch', %s, 'host-a', %s)",
               job_id, token, LONG, LONG) == "run"
    assert moments(cur, job_id)["lease"] <= timedelta(hours=1)
    assert moments(cur, job_id)["deadline"] <= timedelta(days=1)
    one(worker, "SELECT renewed FROM publisher_heartbeat(%s::bigint[], %s::uuid[], %s)", [job_id], [token], LONG)
    assert moments(cur, job_id)["lease"] <= timedelta(hours=1)
    assert one(worker, "SELECT publisher_record_failure(%s, %s, 'origin 503', false, 'origin_5xx')",
               job_id, token) == "retry"
    one(worker, "SELECT publisher_schedule_retry(%s, %s, %s)", job_id, token, LONG)
    assert moments(cur, job_id)["delay"] <= timedelta(days=1)


def _start_over_asking_for_a_high_limit(worker, job_id, token):
    """Files gone, as a worker would report it, passing a limit of its own where the function takes one."""
    try:
        return one(worker, "SELECT attempt_token::text FROM publisher_start_over(%s, %s, 'gone', 'scratch_missing', "
                           "true, 1000000, %s)", job_id, token, LONG)
    except psycopg2.errors.UndefinedFunction:
        return one(worker, "SELECT attempt_token::text FROM publisher_start_over(%s, %s, 'gone', 'scratch_missing', "
                           "true, %s)", job_id, token, LONG)


def test_a_worker_can_neither_raise_the_start_over_limit_nor_put_a_job_off_for_long(cur, worker):
    job_id, token = claimed_job(cur)
    for _ in range(20):
        assert begin(cur, job_id, token, "fetch") == "run" and end(cur, job_id, token, "fetch", "variant")
        assert begin(cur, job_id, token, "variant") == "run"
        token = _start_over_asking_for_a_high_limit(worker, job_id, token)
        if token is None:
            break
        assert moments(cur, job_id)["delay"] <= timedelta(days=1)
        cur.execute("UPDATE publish_jobs SET next_attempt_at = NULL WHERE id = %s", (job_id,))
    assert one(cur, "SELECT status FROM publish_jobs WHERE id = %s", job_id) == "failed"
    assert one(cur, "SELECT scratch_restarts FROM publish_jobs WHERE id = %s", job_id) <= 5

"""Completion events in SQL: the transaction that ends a job sends NOTIFY
publish_events with the documented payload, and writes it to the webhook outbox
only while a listener delivers from it."""

import json
import select

import psycopg2
import pytest

from tests.support.job_sql import begin, claimed_job, fail, file_of, finalize, new_job, one, rows, run_to_upload

VARIANTS = {"thumb": {"url": "https://cdn.test/media/f/thumb-1.webp", "key": "media/{file}/thumb-1.webp", "width": 400,
                      "height": 300, "bytes": 1234, "formats": {"webp": {"bytes": 1234}}},
            "display": {"url": "https://cdn.test/media/f/display-1.webp", "key": "media/{file}/display-1.webp",
                        "width": 1600, "height": 1200, "bytes": 98765}}


@pytest.fixture
def events(schema_db):
    """A second connection, LISTENing on publish_events: call it for what has arrived."""
    _, url = schema_db
    conn = psycopg2.connect(url)
    conn.autocommit = True
    conn.cursor().execute("LISTEN publish_events")

    def arrived(wait=0.5):
        if select.select([conn], [], [], wait)[0]:
            conn.poll()
        got = [json.loads(n.payload) for n in conn.notifies]
        conn.notifies.clear()
        return got

    yield arrived
    conn.close()


def test_a_completed_job_announces_its_variants_when_its_transaction_commits(schema_db, cur, events):
    conn, _ = schema_db
    job_id, token = claimed_job(cur)
    run_to_upload(cur, job_id, token)
    assert events() == []
    conn.autocommit = False
    finalize(cur, job_id, token, in_folder(VARIANTS, file_of(cur, job_id)["id"]))
    assert events(0.2) == []  # not before the commit
    conn.commit()
    conn.autocommit = True
    [event] = events()
    file_id = one(cur, "SELECT file_id::text FROM publish_jobs WHERE id = %s", job_id)
    assert event["type"] == "publish.completed" and event["status"] == "completed"
    assert event["job_id"] == job_id and event["file_id"] == file_id and event["raid_key"] == "lot-1.jpg"
    assert event["variants"] == {
        "thumb": {"url": "https://cdn.test/media/f/thumb-1.webp", "width": 400, "height": 300, "bytes": 1234},
        "display": {"url": "https://cdn.test/media/f/display-1.webp", "width": 1600, "height": 1200,
                    "bytes": 98765}}
    assert "error" not in event and len(event["event_id"]) == 36 and event["at"].endswith("Z")


def test_a_failed_or_cancelled_job_announces_its_error_and_a_rolled_back_end_nothing(schema_db, cur, events):
    conn, _ = schema_db
    job_id, token = claimed_job(cur)
    assert begin(cur, job_id, token, "fetch") == "run"
    assert one(cur, "SELECT publisher_record_failure(%s, %s, %s, true, %s) AS o",
               job_id, token, "fetch: origin answered 404", "origin_404") == "failed"
    [event] = events()
    assert event["type"] == "publish.failed" and event["job_id"] == job_id
    assert event["error"] == {"reason": "origin_404", "message": "fetch: origin answered 404"}
    assert "variants" not in event

    other = new_job(cur)
    conn.autocommit = False
    one(cur, "SELECT changed FROM publisher_admin_cancel(%s)", other)
    conn.rollback()
    conn.autocommit = True
    assert events(0.2) == []
    one(cur, "SELECT changed FROM publisher_admin_cancel(%s)", other)
    [cancelled] = events()
    assert cancelled["type"] == "publish.cancelled" and cancelled["job_id"] == other

    retried, token = claimed_job(cur)  # a transient failure is not an end: no event
    assert begin(cur, retried, token, "fetch") == "run"
    assert fail(cur, retried, token, "fetch: RAID answered 503", False) != "failed"
    assert events(0.2) == []


def test_the_outbox_keeps_events_only_while_a_webhook_is_configured(cur, events):
    job_id = new_job(cur)
    one(cur, "SELECT changed FROM publisher_admin_cancel(%s)", job_id)
    assert rows(cur, "SELECT * FROM publish_event_outbox") == []

    cur.execute("INSERT INTO publisher_settings (name, value) VALUES ('webhook', 'on')")
    second = new_job(cur)
    one(cur, "SELECT changed FROM publisher_admin_cancel(%s)", second)
    [row] = rows(cur, "SELECT event_id::text, payload FROM publish_event_outbox")
    # Both cancels notified; the second's notification may arrive after a first read.
    notified = {}
    for _ in range(20):
        notified.update((e["event_id"], e) for e in events())
        if row["event_id"] in notified:
            break
    assert row["payload"] == notified[row["event_id"]]

    [taken] = rows(cur, "SELECT id, attempts FROM publisher_webhook_take(10, interval '1 minute')")
    assert rows(cur, "SELECT id FROM publisher_webhook_take(10, interval '1 minute')") == []  # held
    one(cur, "SELECT publisher_webhook_record(%s, false, 'HTTP 503', interval '0 seconds')", taken["id"])
    [again] = rows(cur, "SELECT id, attempts FROM publisher_webhook_take(10, interval '1 minute')")
    assert again == {"id": taken["id"], "attempts": 1}
    one(cur, "SELECT publisher_webhook_record(%s, true, NULL, NULL)", taken["id"])
    done = rows(cur, "SELECT attempts, delivered_at IS NOT NULL AS delivered, last_error FROM publish_event_outbox")
    assert done == [{"attempts": 2, "delivered": True, "last_error": None}]


def in_folder(variants, file_id):
    """VARIANTS with each key in the file's folder, as the upload step names them."""
    return json.loads(json.dumps(variants).replace("media/{file}/", f"media/{file_id}/"))

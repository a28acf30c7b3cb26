"""The operator's rules in SQL: a cancelled job is an end of its own that the
bulk actions leave alone, a failure keeps its typed reason, backfill queues each
unpublished file once, and the monitoring queries of the system we replace still
run unchanged."""

from tests.support.job_sql import begin, claimed_job, fail, file_of, job, new_file, new_job, one, rows


def cancel(cur, job_id):
    return one(cur, "SELECT * FROM publisher_admin_cancel(%s)", job_id)


def test_a_cancelled_job_is_not_a_failure_and_retry_failed_leaves_it(cur):
    job_id = new_job(cur)
    assert cancel(cur, job_id)["changed"]
    assert job(cur, job_id)["status"] == "cancelled"
    assert rows(cur, "SELECT * FROM publisher_admin_retry_failed(NULL)") == []
    assert job(cur, job_id)["status"] == "cancelled"


def test_a_failure_keeps_the_reason_it_was_raised_with(cur):
    job_id, token = claimed_job(cur)
    assert begin(cur, job_id, token, "fetch") == "run"
    assert one(cur, "SELECT publisher_record_failure(%s, %s, %s, true, %s) AS o",
               job_id, token, "fetch: origin answered 404", "origin_404") == "failed"
    assert job(cur, job_id)["failure_reason"] == "origin_404"
    # A failure without a typed reason (NULL) has none.
    other, token = claimed_job(cur)
    assert begin(cur, other, token, "fetch") == "run"
    assert fail(cur, other, token, "fetch: boom", True) == "failed"
    assert job(cur, other)["status"] == "failed" and job(cur, other)["failure_reason"] is None


def test_backfill_queues_each_unpublished_live_file_once(cur):
    never = new_file(cur, "never.jpg")
    failed = new_job(cur, new_file(cur, "failed.jpg"))
    cur.execute("UPDATE publish_jobs SET status = 'failed', last_error = 'x' WHERE id = %s", (failed,))
    active = new_job(cur, new_file(cur, "active.jpg"))
    cancelled = new_job(cur, new_file(cur, "cancelled.jpg"))
    cancel(cur, cancelled)
    deleted = new_file(cur, "deleted.jpg")
    cur.execute("UPDATE auction_files SET deleted_at = now() WHERE id = %s", (deleted,))
    wanted = {never, str(file_of(cur, failed)["id"])}

    looked_at = rows(cur, "SELECT file_id::text AS file_id, job_id FROM publisher_backfill(NULL, NULL)")
    assert {r["file_id"] for r in looked_at} == {str(f) for f in wanted}
    assert all(r["job_id"] for r in looked_at)
    assert job(cur, active)["status"] == "pending" and job(cur, cancelled)["status"] == "cancelled"
    # Run again (resumed, or beside another backfill): nothing more is queued.
    assert rows(cur, "SELECT * FROM publisher_backfill(NULL, NULL)") == []
    assert one(cur, "SELECT count(*)::int AS n FROM publish_jobs WHERE status = 'pending'") == 3


def test_the_monitoring_queries_of_the_system_we_replace_still_run(cur):
    cancel(cur, new_job(cur))
    new_job(cur)
    assert one(cur, "SELECT COUNT(*) AS n FROM publish_jobs WHERE status = 'pending'") == 1
    rows(cur, "SELECT * FROM publish_jobs WHERE status = 'failed' AND retry_count >= max_retries")
    rows(cur, "SELECT AVG(EXTRACT(EPOCH FROM (completed_at - started_at))) FROM publish_jobs"
              " WHERE status = 'completed' AND completed_at > NOW() - INTERVAL '1 hour'")
    rows(cur, "SELECT publish_status, COUNT(*) FROM auction_files WHERE deleted_at IS NULL GROUP BY publish_status")
    rows(cur, "SELECT state, count(*) FROM dramatiq.queue GROUP BY 1")


def test_a_bulk_cancel_acts_only_on_jobs_unchanged_since_its_preview(cur):
    counted = [new_job(cur, new_file(cur, f"sale/{n}.jpg")) for n in "ab"]
    as_of = one(cur, "SELECT now()")
    preview = rows(cur, "SELECT job_id FROM publisher_admin_waiting_to_cancel(NULL, NULL, NULL, 'sale/%%', %s)", as_of)
    assert [r["job_id"] for r in preview] == counted
    later = new_job(cur, new_file(cur, "sale/c.jpg"))  # arrives after the preview
    cur.execute("UPDATE publish_jobs SET max_retries = 9 WHERE id = %s", (counted[1],))  # changes after it
    # Without the preview's time, nothing: a call with NULLs never cancels every waiting job.
    assert rows(cur, "SELECT * FROM publisher_admin_cancel_waiting(NULL, NULL, NULL, NULL, NULL)") == []
    cancelled = rows(cur, "SELECT * FROM publisher_admin_cancel_waiting(NULL, NULL, NULL, 'sale/%%', %s)", as_of)
    assert [(r["job_id"], r["changed"]) for r in cancelled] == [(counted[0], True)]
    assert [job(cur, j)["status"] for j in (*counted, later)] == ["cancelled", "pending", "pending"]


def test_a_bulk_retry_runs_again_only_the_failed_jobs_the_filter_matches(cur):
    matching = [new_job(cur, new_file(cur, f"sale-4/{n}.jpg")) for n in "ab"]
    elsewhere = new_job(cur, new_file(cur, "sale-40/a.jpg"))
    cur.execute("UPDATE publish_jobs SET status = 'failed', failure_reason = 'origin_404' WHERE id = ANY(%s)",
                ([*matching, elsewhere],))
    retried = rows(cur, "SELECT job_id FROM publisher_admin_retry_failed('origin_404', 'failed', NULL, 'sale-4/%%')")
    assert sorted(r["job_id"] for r in retried) == matching
    assert [job(cur, j)["status"] for j in (*matching, elsewhere)] == ["pending", "pending", "failed"]

"""The operator's actions on jobs, shared by publisher-admin and the web page.
Each is a SQL function (sql/006_operations.sql) that takes the workers' row
locks and says what it changed; a job or file that does not exist comes back
as one unchanged row with no file."""

from __future__ import annotations

from publisher.jobs import queries

FAILED_TO_RETRY = ("SELECT job_id, file_id::text AS file_id, failure_reason, last_error, updated_at "
                   "FROM publisher_admin_failed_to_retry(%s)")


def retry_job(cur, job_id: int) -> list[dict]:
    return queries.admin_action(cur, queries.ADMIN_RETRY, job_id)


def cancel_job(cur, job_id: int) -> list[dict]:
    return queries.admin_action(cur, queries.ADMIN_CANCEL, job_id)


def republish_file(cur, file_id: str) -> list[dict]:
    return queries.admin_action(cur, queries.ADMIN_REPUBLISH, file_id)


def failures_to_retry(cur, reason: str | None) -> list[dict]:
    """The failed jobs retry_failures would set to pending (a literal part of
    last_error, or a typed reason; None: every one)."""
    cur.execute(FAILED_TO_RETRY, (reason,))
    return cur.fetchall()


def retry_failures(cur, reason: str | None) -> list[dict]:
    return queries.admin_action(cur, queries.ADMIN_RETRY_FAILED, reason)

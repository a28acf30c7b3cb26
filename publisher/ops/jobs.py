"""What the operator reads about jobs: a filtered list, and one job with its
file, its variants and its timeline (publish_job_events). Read-only: it runs
under the publisher_readonly role, and the CLI and the web page share it."""

from __future__ import annotations

from datetime import datetime

LIST_JOBS = """
    SELECT j.id, j.file_id::text AS file_id, f.raid_key, j.status, j.stage, j.retry_count, j.max_retries,
           j.failure_reason, j.last_error, j.created_at, j.updated_at, j.completed_at
      FROM publish_jobs j JOIN auction_files f ON f.id = j.file_id
     WHERE (%(status)s::text IS NULL OR j.status = %(status)s)
       AND (%(reason)s::text IS NULL OR strpos(lower(coalesce(j.last_error, '')), lower(%(reason)s)) > 0
            OR j.failure_reason = %(reason)s)
       AND (%(since)s::timestamptz IS NULL OR j.updated_at >= %(since)s)
     ORDER BY j.id DESC LIMIT %(limit)s OFFSET %(offset)s
"""
JOB = """
    SELECT j.id, j.file_id::text AS file_id, j.status, j.stage, j.retry_count, j.max_retries,
           j.failure_reason, j.last_error, j.created_at, j.started_at, j.updated_at, j.completed_at,
           f.raid_key, f.publish_status, f.variants, f.deleted_at
      FROM publish_jobs j JOIN auction_files f ON f.id = j.file_id
     WHERE j.id = %s
"""
TIMELINE = """
    SELECT at, from_status, to_status, stage, retry_count, last_error
      FROM publish_job_events WHERE job_id = %s ORDER BY id
"""


def list_jobs(cur, *, status: str | None = None, reason: str | None = None, since: datetime | None = None,
              limit: int = 50, offset: int = 0) -> list[dict]:
    """The newest jobs first. `reason` is a literal, case-insensitive part of
    last_error, or a typed failure reason (origin_404, corrupt_image, ...)."""
    cur.execute(LIST_JOBS, {"status": status, "reason": reason, "since": since, "limit": limit, "offset": offset})
    return cur.fetchall()


def show_job(cur, job_id: int) -> dict | None:
    """One job, its file and variants, and every status change it went through."""
    cur.execute(JOB, (job_id,))
    job = cur.fetchone()
    if job is None:
        return None
    cur.execute(TIMELINE, (job_id,))
    return {**job, "timeline": cur.fetchall()}

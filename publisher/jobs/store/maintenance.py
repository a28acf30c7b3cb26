"""Retention and the purges (sql/006_operations.sql, sql/011_retention.sql).
Each purge deletes at most `batch` rows per call, in the caller's transaction."""

from __future__ import annotations

from datetime import timedelta

from .cursor import Cursor, one_row
from .rows import FileToPurge

PURGE_COMPLETED_JOBS = "SELECT publisher_purge_completed_jobs(%s, %s) AS n"
PURGE_BROKER_MESSAGES = "SELECT publisher_purge_broker_messages(%s, %s) AS n"
PURGE_JOB_EVENTS = "SELECT publisher_purge_job_events(%s, %s) AS n"
PURGE_EVENT_OUTBOX = "SELECT publisher_purge_event_outbox(%s, %s) AS n"
TAKE_UNPUBLISHED_OBJECTS = "SELECT key FROM publisher_take_unpublished_objects(%s, %s)"
FILES_TO_PURGE = "SELECT file_id::text AS file_id FROM publisher_files_to_purge(%s, %s)"
LOCK_FILE_FOR_PURGE = "SELECT file_id::text AS file_id, keys, job_ids FROM publisher_lock_file_for_purge(%s, %s)"
DELETE_FILE = "SELECT publisher_delete_file(%s, %s) AS n"
FORGET_LOST_HOSTS = "SELECT publisher_forget_lost_hosts(%s) AS n"
PG_CRON_INSTALLED = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') AS installed"
PG_CRON_JOBS = "SELECT count(*)::int AS n FROM cron.job WHERE jobname LIKE 'media-publisher-%%'"

#: The row purges, by what they remove: each deletes rows older than its age.
ROW_PURGES = {
    "completed_jobs": PURGE_COMPLETED_JOBS,
    "broker_messages": PURGE_BROKER_MESSAGES,
    "job_events": PURGE_JOB_EVENTS,
    "webhook_events": PURGE_EVENT_OUTBOX,
}


def purge_rows(cur: Cursor, what: str, older: timedelta, batch: int) -> int:
    """One batch of one ROW_PURGES purge; how many rows it deleted."""
    cur.execute(ROW_PURGES[what], (older, batch))
    return one_row(cur)["n"]


def take_unpublished_objects(cur: Cursor, grace: timedelta, batch: int) -> list[str]:
    """Keys no file publishes, unpublished longer than grace; their rows are deleted in this transaction."""
    cur.execute(TAKE_UNPUBLISHED_OBJECTS, (grace, batch))
    return [r["key"] for r in cur.fetchall()]


def files_to_purge(cur: Cursor, older: timedelta, limit: int) -> list[str]:
    cur.execute(FILES_TO_PURGE, (older, limit))
    return [r["file_id"] for r in cur.fetchall()]


def lock_file_for_purge(cur: Cursor, file_id: str, older: timedelta) -> FileToPurge | None:
    """The file, locked; None if it was restored or a job became active meanwhile."""
    cur.execute(LOCK_FILE_FOR_PURGE, (file_id, older))
    row = cur.fetchone()
    return FileToPurge.from_row(row) if row else None


def delete_file(cur: Cursor, file_id: str, older: timedelta) -> int:
    cur.execute(DELETE_FILE, (file_id, older))
    return one_row(cur)["n"]


def forget_lost_hosts(cur: Cursor, silent_for: timedelta) -> int:
    cur.execute(FORGET_LOST_HOSTS, (silent_for,))
    return one_row(cur)["n"]


def pg_cron_schedules_maintenance(cur: Cursor) -> bool:
    """Whether pg_cron runs the database side of maintenance (sql/007_pg_cron.sql)."""
    cur.execute(PG_CRON_INSTALLED)
    if not one_row(cur)["installed"]:
        return False
    cur.execute(PG_CRON_JOBS)
    return one_row(cur)["n"] > 0

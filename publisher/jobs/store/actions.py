"""The operator's actions (retry and cancel: sql/002_job_states.sql; republish,
backfill, pausing a lane and draining a host: sql/006_operations.sql) and republish requests by recipe
(sql/004_imaging.sql). Each SQL function takes the workers' row locks
and says what it changed; a job or file that does not exist comes back as one
unchanged row with no file."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from .cursor import Cursor, Row, one_row
from .filters import JobFilter
from .states import ACTIVE_STATUSES

ADMIN_RETRY = "SELECT changed, job_id, file_id::text AS file_id, message FROM publisher_admin_retry(%s)"
ADMIN_RETRY_FAILED = "SELECT job_id, file_id::text AS file_id, last_error FROM publisher_admin_retry_failed(%s)"
ADMIN_REPUBLISH = "SELECT changed, job_id, file_id::text AS file_id, message FROM publisher_admin_republish(%s)"
ADMIN_CANCEL = "SELECT changed, job_id, file_id::text AS file_id, message FROM publisher_admin_cancel(%s)"
PAUSE_LANE = "SELECT changed, message FROM publisher_admin_pause_lane(%s::smallint)"
RESUME_LANE = "SELECT changed, message FROM publisher_admin_resume_lane(%s::smallint)"
DRAIN_HOST = "SELECT changed, message FROM publisher_admin_drain_host(%s)"
RESUME_HOST = "SELECT changed, message FROM publisher_admin_resume_host(%s)"
FAILED_TO_RETRY = ("SELECT job_id, file_id::text AS file_id, failure_reason, last_error, updated_at "
                   "FROM publisher_admin_failed_to_retry(%s)")
COUNT_BACKFILL_CANDIDATES = "SELECT count(*)::int AS n FROM publisher_backfill_candidates(NULL, NULL)"
BACKFILL = "SELECT file_id::text AS file_id, job_id FROM publisher_backfill(%s, %s)"
REQUEST_REPUBLISH = "SELECT publisher_request_republish(%s, %s) AS created"
COUNT_STALE = "SELECT count(*)::int AS stale FROM publisher_stale_files(%s)"
COUNT_ACTIVE_REPUBLISH = """
    SELECT count(*)::int AS active FROM publish_jobs
     WHERE republish_recipe IS NOT NULL AND status = ANY(%s)
"""
REPUBLISH_MISMATCHES = "SELECT file_id::text AS file_id, recipe FROM publisher_republish_mismatches(%s)"


class Bulk(StrEnum):
    """An operator's action on every job a filter matches: retry runs again the failed ones (the
    latest job of a file that is not deleted), cancel the ones that have not started a step."""
    RETRY = "retry"
    CANCEL = "cancel"


def _rows(cur: Cursor, statement: str, *args: object) -> Sequence[Row]:
    cur.execute(statement, args)
    return cur.fetchall()


def pause_lane(cur: Cursor, lane: int) -> Sequence[Row]:
    return _rows(cur, PAUSE_LANE, lane)


def resume_lane(cur: Cursor, lane: int) -> Sequence[Row]:
    return _rows(cur, RESUME_LANE, lane)


def drain_host(cur: Cursor, host_id: str) -> Sequence[Row]:
    return _rows(cur, DRAIN_HOST, host_id)


def resume_host(cur: Cursor, host_id: str) -> Sequence[Row]:
    return _rows(cur, RESUME_HOST, host_id)


def retry_job(cur: Cursor, job_id: int) -> Sequence[Row]:
    return _rows(cur, ADMIN_RETRY, job_id)


def cancel_job(cur: Cursor, job_id: int) -> Sequence[Row]:
    return _rows(cur, ADMIN_CANCEL, job_id)


def republish_file(cur: Cursor, file_id: str) -> Sequence[Row]:
    return _rows(cur, ADMIN_REPUBLISH, file_id)


def failures_to_retry(cur: Cursor, reason: str | None) -> Sequence[Row]:
    """The failed jobs retry_failures would set to pending (a literal part of
    last_error, or a typed reason; None: every one)."""
    return _rows(cur, FAILED_TO_RETRY, reason)


def retry_failures(cur: Cursor, reason: str | None) -> Sequence[Row]:
    return _rows(cur, ADMIN_RETRY_FAILED, reason)


# A bulk action's arguments: JobFilter.params(), and when its preview counted.
_BULK_ARGS = "%(reason)s, %(status)s, %(file_id)s::uuid, %(key_like)s, %(as_of)s::timestamptz"
BULK_CANDIDATES = {
    Bulk.RETRY: f"SELECT job_id, file_id::text AS file_id, last_error "
                f"FROM publisher_admin_failed_to_retry({_BULK_ARGS})",
    Bulk.CANCEL: f"SELECT job_id, file_id::text AS file_id, last_error "
                 f"FROM publisher_admin_waiting_to_cancel({_BULK_ARGS})",
}
BULK_COUNT = "SELECT count(*)::int AS n, now() AS as_of FROM ({}) c"
BULK_ACT = {
    Bulk.RETRY: f"SELECT true AS changed, job_id FROM publisher_admin_retry_failed({_BULK_ARGS})",
    Bulk.CANCEL: f"SELECT changed, job_id FROM publisher_admin_cancel_waiting({_BULK_ARGS})",
}


@dataclasses.dataclass(frozen=True)
class BulkPreview:
    count: int
    #: When they were counted: the action, once confirmed, acts on no job changed since.
    as_of: datetime
    sample: Sequence[Row]


def bulk_preview(cur: Cursor, action: Bulk, where: JobFilter, sample: int = 10) -> BulkPreview:
    """What `action` would change of the jobs `where` matches: how many, and the first `sample`."""
    args = _bulk_args(where, None)
    cur.execute(BULK_COUNT.format(BULK_CANDIDATES[action]), args)
    counted = one_row(cur)
    cur.execute(BULK_CANDIDATES[action] + " LIMIT %(sample)s", {**args, "sample": sample})
    return BulkPreview(counted["n"], counted["as_of"], cur.fetchall())


def bulk_act(cur: Cursor, action: Bulk, where: JobFilter, as_of: datetime) -> tuple[int, int]:
    """Does `action` to the jobs `where` matches that have not changed since `as_of` (a preview's);
    (changed, refused): a job refused changed in the meantime (began a step, has another active job)."""
    cur.execute(BULK_ACT[action], _bulk_args(where, as_of))
    changed = [r["changed"] for r in cur.fetchall()]
    return sum(changed), len(changed) - sum(changed)


def _bulk_args(where: JobFilter, as_of: datetime | None) -> dict:
    if where.since is not None:
        raise ValueError("a bulk action filters by status, reason, file and RAID key, not by time")
    return {**where.params(), "as_of": as_of}


def count_backfill_candidates(cur: Cursor) -> int:
    cur.execute(COUNT_BACKFILL_CANDIDATES)
    return one_row(cur)["n"]


def backfill_page(cur: Cursor, after: str | None, size: int) -> Sequence[Row]:
    """The next `size` candidate files after `after`, each with its new job (None: it gained one meanwhile)."""
    return _rows(cur, BACKFILL, after, size)


def request_republish(cur: Cursor, recipe: str, limit: int) -> int:
    cur.execute(REQUEST_REPUBLISH, (recipe, limit))
    return one_row(cur)["created"]


def count_stale(cur: Cursor, recipe: str) -> int:
    cur.execute(COUNT_STALE, (recipe,))
    return one_row(cur)["stale"]


def count_active_republish(cur: Cursor) -> int:
    cur.execute(COUNT_ACTIVE_REPUBLISH, ([str(s) for s in ACTIVE_STATUSES],))
    return one_row(cur)["active"]


def republish_mismatches(cur: Cursor, recipe: str) -> Sequence[Row]:
    return _rows(cur, REPUBLISH_MISMATCHES, recipe)

"""The listener's side of the state machine: claims and rescues
(sql/002_job_states.sql), and the channel the table NOTIFYs on."""

from __future__ import annotations

from datetime import timedelta

from .cursor import Cursor
from .rows import ClaimedJob

#: The channel publish_jobs NOTIFYs when a job becomes runnable (sql/002_job_states.sql).
CHANNEL = "publish_jobs"

CLAIM_PENDING = "SELECT job_id, attempt_token::text AS token, stage FROM publisher_claim_pending(%s, %s, %s)"
RESCUE = "SELECT job_id, attempt_token::text AS token, stage FROM publisher_rescue(%s, %s, %s)"
FILES_AND_LANES = "SELECT id, file_id::text AS file_id, lane FROM publish_jobs WHERE id = ANY(%s)"


def listen(cur: Cursor) -> None:
    cur.execute(f"LISTEN {CHANNEL}")


def claim_pending(cur: Cursor, limit: int, per_thread: int, alive: timedelta) -> list[ClaimedJob]:
    """Up to `limit` pending jobs, as far as the live workers have room for them."""
    cur.execute(CLAIM_PENDING, (limit, per_thread, alive))
    return [ClaimedJob.from_row(r) for r in cur.fetchall()]


def rescue(cur: Cursor, limit: int, alive: timedelta, handoff: timedelta) -> list[ClaimedJob]:
    """Jobs whose step lost its lease, whose host is gone, or whose message was lost: a new attempt each."""
    cur.execute(RESCUE, (limit, alive, handoff))
    return [ClaimedJob.from_row(r) for r in cur.fetchall()]


def files_and_lanes(cur: Cursor, job_ids: list[int]) -> dict[int, tuple[str, int]]:
    """The file and the lane of each job: for the listener's log lines, and to send its first step in its lane."""
    cur.execute(FILES_AND_LANES, (job_ids,))
    return {r["id"]: (r["file_id"], r["lane"]) for r in cur.fetchall()}

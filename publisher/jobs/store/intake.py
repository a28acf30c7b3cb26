"""The listener's side of the state machine: claims and rescues
(sql/002_job_states.sql), and the channel the table NOTIFYs on."""

from __future__ import annotations

from datetime import timedelta

from .cursor import Cursor, one_row
from .rows import ClaimedJob

#: The channel publish_jobs NOTIFYs when a job becomes runnable (sql/002_job_states.sql).
CHANNEL = "publish_jobs"

# A claimed or rescued job (rows.ClaimedJob), as both functions return it.
_CLAIMED_FROM = "SELECT job_id, attempt_token::text AS token, stage, file_id::text AS file_id, lane FROM "
CLAIM_PENDING = _CLAIMED_FROM + "publisher_claim_pending(%s, %s, %s)"
RESCUE = _CLAIMED_FROM + "publisher_rescue(%s, %s, %s)"
PENDING_WAITS = "SELECT publisher_pending_waits() AS waits"


def listen(cur: Cursor) -> None:
    cur.execute(f"LISTEN {CHANNEL}")


def claim_pending(cur: Cursor, limit: int, per_thread: int, alive: timedelta) -> list[ClaimedJob]:
    """Up to `limit` pending jobs, as far as the live workers have room for them, each with its file and lane."""
    cur.execute(CLAIM_PENDING, (limit, per_thread, alive))
    return [ClaimedJob.from_row(r) for r in cur.fetchall()]


def pending_waits(cur: Cursor) -> bool:
    """Whether a pending job waits in a lane that is not paused."""
    cur.execute(PENDING_WAITS)
    return one_row(cur)["waits"]


def rescue(cur: Cursor, limit: int, alive: timedelta, handoff: timedelta) -> list[ClaimedJob]:
    """Jobs whose step lost its lease, whose host is gone, or whose message was lost: a new attempt each."""
    cur.execute(RESCUE, (limit, alive, handoff))
    return [ClaimedJob.from_row(r) for r in cur.fetchall()]

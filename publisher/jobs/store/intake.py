"""The listener's side of the state machine: claims and rescues
(sql/002_job_states.sql), and the channel the table NOTIFYs on."""

from __future__ import annotations

from datetime import timedelta

from .cursor import Cursor
from .rows import ClaimedJob

#: The channel publish_jobs NOTIFYs when a job becomes runnable (sql/002_job_states.sql).
CHANNEL = "publish_jobs"

# Each job's file and lane come with it, read in the same statement by its primary key (whatever the
# planner guesses of a function's rows): a claim or a rescue changes neither, so the statement's
# snapshot of the row, from before the function ran, has them right.
_WITH_FILE_AND_LANE = """
    SELECT c.job_id, c.attempt_token::text AS token, c.stage,
           (SELECT j.file_id::text FROM publish_jobs j WHERE j.id = c.job_id) AS file_id,
           (SELECT j.lane FROM publish_jobs j WHERE j.id = c.job_id) AS lane
      FROM {} c
"""
CLAIM_PENDING = _WITH_FILE_AND_LANE.format("publisher_claim_pending(%s, %s, %s)")
RESCUE = _WITH_FILE_AND_LANE.format("publisher_rescue(%s, %s, %s)")


def listen(cur: Cursor) -> None:
    cur.execute(f"LISTEN {CHANNEL}")


def claim_pending(cur: Cursor, limit: int, per_thread: int, alive: timedelta) -> list[ClaimedJob]:
    """Up to `limit` pending jobs, as far as the live workers have room for them, each with its file and lane."""
    cur.execute(CLAIM_PENDING, (limit, per_thread, alive))
    return [ClaimedJob.from_row(r) for r in cur.fetchall()]


def rescue(cur: Cursor, limit: int, alive: timedelta, handoff: timedelta) -> list[ClaimedJob]:
    """Jobs whose step lost its lease, whose host is gone, or whose message was lost: a new attempt each."""
    cur.execute(RESCUE, (limit, alive, handoff))
    return [ClaimedJob.from_row(r) for r in cur.fetchall()]

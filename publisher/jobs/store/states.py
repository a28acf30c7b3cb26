"""Python's names for the job state machine of sql/002_job_states.sql: a job's
statuses and the outcomes its functions return. sql/ is the authority;
tests/unit/test_python_and_sql_agree.py checks that these agree with it."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Status(StrEnum):
    """A job's statuses, in the order it goes through them (publish_jobs.status CHECK)."""
    PENDING = "pending"
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: At most one job per file is in one of these (the index publish_jobs_one_active_per_file).
ACTIVE_STATUSES = (Status.PENDING, Status.QUEUED, Status.PROCESSING)
#: Claimed, so held by a worker host (host_id) and an attempt (attempt_token).
IN_FLIGHT_STATUSES = (Status.QUEUED, Status.PROCESSING)
#: A job that ended: its event goes to the webhook outbox (sql/010_publish_events.sql).
ENDED_STATUSES = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)
#: What the listener's gauges count every few seconds: all but the ends that hold the history.
COUNTED_STATUSES = tuple(s for s in Status if s not in (Status.COMPLETED, Status.CANCELLED))
#: Not yet running: what an operator may cancel (publisher_admin_cancel, sql/002_job_states.sql).
WAITING_STATUSES = (Status.PENDING, Status.QUEUED)
class Lane(IntEnum):
    """Where a pending job waits (publish_jobs.lane): claimed lane by lane, oldest first in each."""
    FRESH = 0    # an application's INSERT: a new lot
    RETRY = 1    # an operator's retry, or republish of one file
    BACKLOG = 2  # the catalogue's: backfill and republish


#: The states of a dramatiq-pg broker message.
BROKER_STATES = ("queued", "consumed", "rejected", "done")


class StepStart(StrEnum):
    """publisher_begin_step: whether this delivery may run its step."""
    RUN = "run"
    STALE = "stale"    # another attempt owns the job, or the job is not at this stage
    BUSY = "busy"      # another delivery of this attempt holds a live lease
    DONE = "done"      # this attempt already finished this step
    FAILED = "failed"  # the step outran its time limit too often: the job failed


class StepFailure(StrEnum):
    """publisher_record_failure: what a failed step did to the job."""
    RETRY = "retry"
    FAILED = "failed"
    STALE = "stale"


class Finalized(StrEnum):
    """publisher_finalize: the last step's result."""
    COMPLETED = "completed"
    STALE = "stale"      # another attempt owns the job
    DELETED = "deleted"  # the file was soft-deleted while the job ran: the job failed


class StartOver(StrEnum):
    """publisher_start_over: after a host fault (files gone, disk full)."""
    RESTARTED = "restarted"
    FAILED = "failed"
    STALE = "stale"

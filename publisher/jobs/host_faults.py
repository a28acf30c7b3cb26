"""Failures of the worker host rather than of the job: its scratch files are gone
or its scratch disk is full. Neither is charged to the job as a retry.

- A host-bound step (variant, upload) whose files are gone or changed
  (ScratchFilesMissing: the scratch volume was emptied by a restart, another
  worker group consumes this host's queue) starts the job over from its fetch
  under a new token, on any host. Each such start over is counted in the job
  (scratch_restarts); past a limit the SQL function holds (not the caller's to
  choose) the job fails, so a host that loses its files every time cannot loop a
  job forever.
- A step that meets a full disk (NoSpace) starts the job over the same way,
  counting nothing, its first step put off by RETRY_MIN_BACKOFF_MS: a full disk
  is waited out, here once there is room or on another host.
- A host below SCRATCH_MIN_FREE_MB takes no first step: it puts the fetch off
  (the message goes back to the shared queue, delayed) and its heartbeat offers
  no threads, so the listener claims no jobs for it; its /readyz fails
  (publisher/observability/worker_health.py).

The state changes are SQL (publisher_start_over, publisher_defer_fetch in
sql/002_job_states.sql).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from publisher.jobs import queries
from publisher.jobs.scratch import NoSpace, ScratchFilesMissing
from publisher.logs import job_fields, short_error

logger = logging.getLogger("publisher.jobs")

def is_host_fault(exception: BaseException) -> bool:
    return isinstance(exception, (ScratchFilesMissing, NoSpace))


def floor_bytes(settings) -> int:
    return settings.scratch_min_free_mb * 1024 * 1024


def short_of_space(rt) -> bool:
    """Whether this host's scratch disk is below SCRATCH_MIN_FREE_MB (a disk that cannot
    be measured counts as short: no first step is taken there)."""
    try:
        return rt.scratch.free_bytes() < floor_bytes(rt.settings)
    except OSError:
        return True


def put_off(rt) -> timedelta:
    return timedelta(milliseconds=rt.settings.retry_min_backoff_ms)


def first_step_delay(rt, exception: BaseException) -> timedelta:
    """How long a job started over waits for its fetch: files gone, not at all; a full
    disk, a moment (the room may come back, or another host takes it)."""
    return timedelta(0) if isinstance(exception, ScratchFilesMissing) else put_off(rt)


def defer_first_step(rt, job_id: int, token: str) -> bool:
    """Puts off a first step this host has no room for; False: the attempt no longer waits
    for it (the message is stale and is dropped)."""
    with rt.db.transaction() as cur:
        return queries.defer_fetch(cur, job_id, token, put_off(rt))


def start_over(rt, job_id: int, token: str, stage: str, exception: BaseException,
               file_id: str | None) -> tuple[str, str | None]:
    """Starts the job over after a host fault; (outcome, new token) as publisher_start_over
    returns it. The attempt's folder goes: it holds nothing of use any more."""
    error = short_error(exception, rt.redact, f"{stage}: ")
    counted = isinstance(exception, ScratchFilesMissing)
    with rt.db.transaction() as cur:
        outcome, new_token = queries.start_over(cur, job_id, token, error, exception.reason, counted,
                                                first_step_delay(rt, exception))
    rt.scratch.remove(job_id, token)
    log = logger.error if outcome == "failed" else logger.warning
    log("job=%s file=%s stage=%s %s: %s", job_id, file_id, stage,
        {"restarted": "started over from fetch, no retry charged", "failed": "failed for good",
         "stale": "failed (stale attempt)"}[outcome], error,
        extra=job_fields(job_id, file_id, stage, event=outcome, error=error))
    return outcome, new_token

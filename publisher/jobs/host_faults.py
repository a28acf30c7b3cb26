"""Failures of the worker host rather than of the job: its scratch files are gone
or its scratch disk is full. Neither is charged to the job as a retry.

- A host-bound step (variant, upload) whose files are gone or changed
  (ScratchFilesMissing: the scratch volume was emptied by a restart, another
  worker group consumes this host's queue) starts the job over from its fetch
  under a new token, on any host. Each such start over is counted in the job
  (scratch_restarts); past a limit the SQL function holds (not the caller's to
  choose) the job fails, so a host that loses its files every time cannot loop a
  job forever.
- A step that meets a full disk (NoSpace: no blocks, no inodes or the quota used
  up) starts the job over the same way, counting nothing, its first step put off
  by RETRY_MIN_BACKOFF_MS: a full disk is waited out, here once there is room or
  on another host. Waited out for a bounded time: a job that meets a full disk
  for longer than publisher_start_over allows from its first such start over
  (a file too large for any host's room above the floor, a quota that stays
  used up) fails for good as no_space, and can be run again once there is room.
- A host below SCRATCH_MIN_FREE_MB, or with fewer than MIN_FREE_FILES files
  (inodes) left, takes no first step: it puts the fetch off (the message goes
  back to the shared queue, delayed) and its heartbeat offers no threads, so the
  listener claims no jobs for it; its /readyz fails
  (publisher/observability/worker_health.py).

The state changes are SQL (publisher_start_over, publisher_defer_fetch in
sql/002_job_states.sql).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TypeGuard

from publisher.jobs.scratch import FreeSpace, NoSpace, ScratchDirUnsafe, ScratchFilesMissing
from publisher.jobs.store import steps
from publisher.jobs.store.states import StartOver
from publisher.logs import job_fields, short_error
from publisher.settings import fixed

logger = logging.getLogger("publisher.jobs")

#: Below this many free files (inodes) in the scratch file system a host is short of space:
#: room for the files of a few attempts (an original, its variants in every format, their parts).
MIN_FREE_FILES = 256


#: A failure of the host rather than of the job.
HostFault = ScratchFilesMissing | NoSpace


def is_host_fault(exception: BaseException) -> TypeGuard[HostFault]:
    return isinstance(exception, (ScratchFilesMissing, NoSpace))


def floor_bytes(settings) -> int:
    return settings.scratch_min_free_mb * 1024 * 1024


def shortage(free: FreeSpace, floor: int) -> str | None:
    """What the scratch disk is short of, below `floor` bytes or MIN_FREE_FILES files; None: nothing."""
    if free.bytes < floor:
        return f"{free.bytes // 2**20} MiB free in the scratch directory, below SCRATCH_MIN_FREE_MB={floor // 2**20}"
    if free.files is not None and free.files < MIN_FREE_FILES:
        return f"{free.files} files (inodes) free in the scratch directory, below {MIN_FREE_FILES}"
    return None


def short_of_space(rt) -> bool:
    """Whether this host's scratch disk is below its floor of bytes or files (a disk that
    cannot be measured, or a directory made unsafe since the start, counts as short: no
    first step is taken there, and /readyz says why)."""
    try:
        return shortage(rt.scratch.free_space(), floor_bytes(rt.settings)) is not None
    except (OSError, ScratchDirUnsafe):
        return True


def put_off(rt) -> timedelta:
    return timedelta(milliseconds=fixed.RETRY_MIN_BACKOFF_MS)


def first_step_delay(rt, exception: BaseException) -> timedelta:
    """How long a job started over waits for its fetch: files gone, not at all; a full
    disk, a moment (the room may come back, or another host takes it)."""
    return timedelta(0) if isinstance(exception, ScratchFilesMissing) else put_off(rt)


def defer_first_step(rt, job_id: int, token: str) -> bool:
    """Puts off a first step this host will not begin (no room for it, or an operator drains
    the host); False: the attempt no longer waits for it (the message is stale and is dropped)."""
    with rt.db.transaction() as cur:
        return steps.defer_fetch(cur, job_id, token, put_off(rt))


def start_over(rt, job_id: int, token: str, stage: str, exception: HostFault,
               file_id: str | None) -> tuple[StartOver, str | None]:
    """Starts the job over after a host fault; (outcome, new token) as publisher_start_over
    returns it. The attempt's folder goes: it holds nothing of use any more."""
    error = short_error(exception, rt.redact, f"{stage}: ")
    counted = isinstance(exception, ScratchFilesMissing)
    with rt.db.transaction() as cur:
        outcome, new_token = steps.start_over(cur, job_id, token, error, exception.reason, counted,
                                              first_step_delay(rt, exception))
    rt.scratch.remove(job_id, token)
    log = logger.error if outcome is StartOver.FAILED else logger.warning
    log("job=%s file=%s stage=%s %s: %s", job_id, file_id, stage,
        {StartOver.RESTARTED: "started over from fetch, no retry charged", StartOver.FAILED: "failed for good",
         StartOver.STALE: "failed (stale attempt)"}[outcome], error,
        extra=job_fields(job_id, file_id, stage, event=outcome, error=error))
    return outcome, new_token

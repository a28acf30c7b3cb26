"""A worker's side of the state machine around one step (sql/002_job_states.sql):
whether it may run, its lease, its end, its failure, starting over after a host
fault; and the host's beat, which says whether the host drains. Each function acts
only for the attempt whose token it is given."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from publisher.clients.db import Database

from .cursor import Cursor, one_row
from .rows import JobContext, StepJob
from .states import IN_FLIGHT_STATUSES, StartOver, StepFailure, StepStart

BEGIN_STEP = ("SELECT outcome, file_id::text AS file_id, retry_count, since_insert "
              "FROM publisher_begin_step(%s, %s, %s, %s, %s, %s)")
HEARTBEAT = "SELECT job_id, renewed FROM publisher_heartbeat(%s::bigint[], %s::uuid[], %s)"
WORKER_BEAT = "SELECT publisher_worker_beat(%s, %s, %s, %s) AS draining"
PASS_STEP = "SELECT publisher_pass_step(%s, %s, %s, %s, %s, %s, %s) AS outcome"
HAND_BACK_STEP = "SELECT publisher_hand_back_step(%s, %s, %s) AS handed"
RECORD_FAILURE = "SELECT publisher_record_failure(%s, %s, %s, %s, %s) AS outcome"
SCHEDULE_RETRY = "SELECT publisher_schedule_retry(%s, %s, %s)"
START_OVER = "SELECT outcome, attempt_token::text AS token FROM publisher_start_over(%s, %s, %s, %s, %s, %s)"
DEFER_FETCH = "SELECT publisher_defer_fetch(%s, %s, %s) AS deferred"
TRACK_OBJECT = "SELECT publisher_track_object(%s, %s, %s)"
# The attempts among those given that are current on this host: their scratch folders are kept.
CURRENT_ATTEMPTS = """
    SELECT id, attempt_token::text AS token FROM publish_jobs
     WHERE id = ANY(%s) AND attempt_token::text = ANY(%s) AND host_id = %s AND status = ANY(%s)
"""
RAID_KEY = "SELECT f.raid_key FROM publish_jobs j JOIN auction_files f ON f.id = j.file_id WHERE j.id = %s"
LOAD_JOB = """
    SELECT j.id, j.file_id::text AS file_id, f.raid_key, j.stage, j.artifacts,
           j.retry_count, j.max_retries
      FROM publish_jobs j JOIN auction_files f ON f.id = j.file_id
     WHERE j.id = %s AND j.attempt_token = %s
"""


def worker_beat(cur: Cursor, worker_id: str, host_id: str, queue: str, threads: int) -> bool:
    """This worker process is alive, on this host, with this many threads to offer (0: none);
    whether an operator drains the host (then none are offered, whatever `threads` says)."""
    cur.execute(WORKER_BEAT, (worker_id, host_id, queue, threads))
    return one_row(cur)["draining"]


def heartbeat(cur: Cursor, running: list[tuple[int, str]], lease: timedelta) -> dict[int, bool]:
    """Renews the leases of the running steps; each job with whether its lease was renewed."""
    cur.execute(HEARTBEAT, ([j for j, _ in running], [t for _, t in running], lease))
    return {r["job_id"]: r["renewed"] for r in cur.fetchall()}


def current_attempts(cur: Cursor, attempts: list[tuple[int, str]], host_id: str) -> set[tuple[int, str]]:
    cur.execute(CURRENT_ATTEMPTS, ([j for j, _ in attempts], [t for _, t in attempts], host_id,
                                   [str(s) for s in IN_FLIGHT_STATUSES]))
    return {(r["id"], r["token"]) for r in cur.fetchall()}


def begin_step(cur: Cursor, job_id: int, token: str, stage: str, lease: timedelta, host_id: str,
               time_limit: timedelta) -> tuple[StepStart, JobContext | None]:
    """Whether the step may run, and when it may (RUN), what its log lines and the queue lag need."""
    cur.execute(BEGIN_STEP, (job_id, token, stage, lease, host_id, time_limit))
    row = one_row(cur)
    outcome = StepStart(row["outcome"])
    return outcome, JobContext.from_row(row) if outcome is StepStart.RUN else None


def load_job(cur: Cursor, job_id: int, token: str) -> StepJob | None:
    """The job as its current attempt sees it; None: the token is not current."""
    cur.execute(LOAD_JOB, (job_id, token))
    row = cur.fetchone()
    return StepJob.from_row(row) if row else None


def pass_step(cur: Cursor, job_id: int, token: str, stage: str, next_stage: str,
              artifacts: Mapping[str, Any] | None, lease: timedelta, time_limit: timedelta) -> StepStart:
    """The step is done and the next one begins on this host (RUN); STALE: the attempt was
    replaced; FAILED: the file was deleted."""
    cur.execute(PASS_STEP, (job_id, token, stage, next_stage, json.dumps(artifacts or {}), lease, time_limit))
    return StepStart(one_row(cur)["outcome"])


def hand_back_step(cur: Cursor, job_id: int, token: str, stage: str) -> bool:
    """A step that pass_step began and this process will not run waits for a message instead;
    False: the attempt is no longer at that step."""
    cur.execute(HAND_BACK_STEP, (job_id, token, stage))
    return one_row(cur)["handed"]


def record_failure(cur: Cursor, job_id: int, token: str, error: str, permanent: bool,
                   reason: str | None) -> StepFailure:
    cur.execute(RECORD_FAILURE, (job_id, token, error, permanent, reason))
    return StepFailure(one_row(cur)["outcome"])


def schedule_retry(cur: Cursor, job_id: int, token: str, delay: timedelta) -> None:
    """When the retry the broker holds is due (publish_jobs.next_attempt_at)."""
    cur.execute(SCHEDULE_RETRY, (job_id, token, delay))


def start_over(cur: Cursor, job_id: int, token: str, error: str, reason: str, counted: bool,
               delay: timedelta) -> tuple[StartOver, str | None]:
    """(RESTARTED, new token), (FAILED, None) or (STALE, None); the limit of counted start
    overs is SQL's (publisher_start_over), not the caller's to choose."""
    cur.execute(START_OVER, (job_id, token, error, reason, counted, delay))
    row = one_row(cur)
    return StartOver(row["outcome"]), row["token"]


def defer_fetch(cur: Cursor, job_id: int, token: str, delay: timedelta) -> bool:
    cur.execute(DEFER_FETCH, (job_id, token, delay))
    return one_row(cur)["deferred"]


def raid_key(cur: Cursor, job_id: int) -> str | None:
    cur.execute(RAID_KEY, (job_id,))
    row = cur.fetchone()
    return row["raid_key"] if row else None


def track_object(db: Database, job_id: int, token: str, key: str) -> None:
    """Records that the attempt is about to PUT key, in a transaction of its own
    (sql/011_retention.sql): waits while maintenance removes that key, so the PUT
    that follows is never removed under it."""
    with db.transaction() as cur:
        cur.execute(TRACK_OBJECT, (job_id, token, key))


def naming_the_file(error: str, raid_key: str | None) -> str:
    """last_error must say which file is wrong; steps that do not name it get it appended."""
    if not raid_key or raid_key in error:
        return error
    return f"{error} (raid_key {raid_key!r})"

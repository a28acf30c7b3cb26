"""Every statement the Python side runs against the job tables, by name.

The state transitions themselves are SQL functions in sql/002_job_states.sql;
this module only calls them.
"""

from __future__ import annotations

import json
from datetime import timedelta

CHANNEL = "publish_jobs"

CLAIM_PENDING = "SELECT job_id, attempt_token::text AS token, stage FROM publisher_claim_pending(%s)"
RESCUE_EXPIRED = "SELECT job_id, attempt_token::text AS token, stage FROM publisher_rescue_expired(%s, %s)"
BEGIN_STEP = "SELECT publisher_begin_step(%s, %s, %s, %s) AS outcome"
HEARTBEAT = "SELECT publisher_heartbeat(%s::bigint[], %s::uuid[], %s) AS renewed"
END_STEP = "SELECT publisher_end_step(%s, %s, %s, %s, %s) AS owned"
RECORD_FAILURE = "SELECT publisher_record_failure(%s, %s, %s, %s) AS outcome"
SCHEDULE_RETRY = "SELECT publisher_schedule_retry(%s, %s, %s)"
FINALIZE = "SELECT publisher_finalize(%s, %s, %s, %s, %s) AS owned"
RAID_KEY = "SELECT f.raid_key FROM publish_jobs j JOIN auction_files f ON f.id = j.file_id WHERE j.id = %s"
LOAD_JOB = """
    SELECT j.id, j.file_id::text AS file_id, f.raid_key, j.stage, j.artifacts,
           j.retry_count, j.max_retries
      FROM publish_jobs j JOIN auction_files f ON f.id = j.file_id
     WHERE j.id = %s AND j.attempt_token = %s
"""


def claim_pending(cur, limit: int) -> list[dict]:
    cur.execute(CLAIM_PENDING, (limit,))
    return cur.fetchall()


def rescue_expired(cur, limit: int, handoff: timedelta) -> list[dict]:
    cur.execute(RESCUE_EXPIRED, (limit, handoff))
    return cur.fetchall()


def begin_step(cur, job_id: int, token: str, stage: str, lease: timedelta) -> str:
    cur.execute(BEGIN_STEP, (job_id, token, stage, lease))
    return cur.fetchone()["outcome"]


def heartbeat(cur, running: list[tuple[int, str]], lease: timedelta) -> int:
    cur.execute(HEARTBEAT, ([j for j, _ in running], [t for _, t in running], lease))
    return cur.fetchone()["renewed"]


def end_step(cur, job_id: int, token: str, next_stage: str, handoff: timedelta, artifacts: dict | None) -> bool:
    cur.execute(END_STEP, (job_id, token, next_stage, handoff, json.dumps(artifacts or {})))
    return cur.fetchone()["owned"]


def record_failure(cur, job_id: int, token: str, error: str, permanent: bool) -> str:
    cur.execute(RECORD_FAILURE, (job_id, token, error, permanent))
    return cur.fetchone()["outcome"]


def raid_key(cur, job_id: int) -> str | None:
    cur.execute(RAID_KEY, (job_id,))
    row = cur.fetchone()
    return row["raid_key"] if row else None


def schedule_retry(cur, job_id: int, token: str, delay: timedelta) -> None:
    cur.execute(SCHEDULE_RETRY, (job_id, token, delay))


def finalize(cur, job_id: int, token: str, variants: dict, width: int, height: int) -> bool:
    cur.execute(FINALIZE, (job_id, token, json.dumps(variants), width, height))
    return cur.fetchone()["owned"]


def load_job(cur, job_id: int, token: str) -> dict | None:
    cur.execute(LOAD_JOB, (job_id, token))
    return cur.fetchone()

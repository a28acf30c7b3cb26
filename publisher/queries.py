"""Every statement the Python side runs against the job tables, by name.

The state transitions themselves are SQL functions in sql/002_job_states.sql;
this module only calls them.
"""

from __future__ import annotations

import json
from datetime import timedelta

CHANNEL = "publish_jobs"

CLAIM_PENDING = "SELECT job_id, attempt_token::text AS token, stage FROM publisher_claim_pending(%s)"
RESCUE_EXPIRED = "SELECT job_id, attempt_token::text AS token, stage FROM publisher_rescue_expired(%s)"
BEGIN_STEP = "SELECT publisher_begin_step(%s, %s, %s, %s) AS outcome"
HEARTBEAT = "SELECT publisher_heartbeat(%s::bigint[], %s::uuid[], %s) AS renewed"
END_STEP = "SELECT publisher_end_step(%s, %s, %s, %s, %s) AS owned"
RECORD_FAILURE = "SELECT publisher_record_failure(%s, %s, %s, %s) AS outcome"
SCHEDULE_RETRY = "SELECT publisher_schedule_retry(%s, %s, %s)"
FINALIZE = "SELECT publisher_finalize(%s, %s, %s, %s, %s) AS owned"
LOAD_JOB = """
    SELECT j.id, j.file_id::text AS file_id, f.raid_key, j.stage, j.artifacts,
           j.retry_count, j.max_retries
      FROM publish_jobs j JOIN auction_files f ON f.id = j.file_id
     WHERE j.id = %s AND j.attempt_token = %s
"""


def claim_pending(cur, limit: int) -> list[dict]:
    cur.execute(CLAIM_PENDING, (limit,))
    return cur.fetchall()


def rescue_expired(cur, limit: int) -> list[dict]:
    cur.execute(RESCUE_EXPIRED, (limit,))
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


def schedule_retry(cur, job_id: int, token: str, delay: timedelta) -> None:
    cur.execute(SCHEDULE_RETRY, (job_id, token, delay))


def finalize(cur, job_id: int, token: str, variants: dict, width: int, height: int) -> bool:
    cur.execute(FINALIZE, (job_id, token, json.dumps(variants), width, height))
    return cur.fetchone()["owned"]


def load_job(cur, job_id: int, token: str) -> dict | None:
    cur.execute(LOAD_JOB, (job_id, token))
    return cur.fetchone()


# -- imaging (sql/004_imaging.sql) -------------------------------------------
RECORD_IMAGING = "SELECT publisher_record_imaging(%s, %s, %s, %s, %s) AS owned"
REQUEST_REPUBLISH = "SELECT publisher_request_republish(%s, %s) AS created"
COUNT_STALE = "SELECT count(*)::int AS stale FROM publisher_stale_files(%s)"
COUNT_ACTIVE_REPUBLISH = """
    SELECT count(*)::int AS active FROM publish_jobs
     WHERE republish_recipe IS NOT NULL AND status IN ('pending', 'queued', 'processing')
"""
REPUBLISH_MISMATCHES = "SELECT file_id::text AS file_id, recipe FROM publisher_republish_mismatches(%s)"
PUBLISHED_FILES = """
    SELECT id::text AS id, raid_key, variants, width, height, recipe, placeholder, dominant_color, published_at
      FROM auction_files
     WHERE publish_status = 'published' AND deleted_at IS NULL AND variants IS NOT NULL
     ORDER BY published_at DESC, id
     LIMIT %s
"""


def record_imaging(cur, job_id: int, token: str, recipe: str, placeholder: str, dominant_color: str) -> bool:
    cur.execute(RECORD_IMAGING, (job_id, token, recipe, placeholder, dominant_color))
    return cur.fetchone()["owned"]


def request_republish(cur, recipe: str, limit: int) -> int:
    cur.execute(REQUEST_REPUBLISH, (recipe, limit))
    return cur.fetchone()["created"]


def count_stale(cur, recipe: str) -> int:
    cur.execute(COUNT_STALE, (recipe,))
    return cur.fetchone()["stale"]


def count_active_republish(cur) -> int:
    cur.execute(COUNT_ACTIVE_REPUBLISH)
    return cur.fetchone()["active"]


def republish_mismatches(cur, recipe: str) -> list[dict]:
    cur.execute(REPUBLISH_MISMATCHES, (recipe,))
    return cur.fetchall()


def published_files(cur, limit: int) -> list[dict]:
    cur.execute(PUBLISHED_FILES, (limit,))
    return cur.fetchall()

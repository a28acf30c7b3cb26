"""What the operator and the gauges read: status counts, the last hour, the
oldest pending fresh lot, failures, worker hosts (and which drain), the latest publishes, one job with
its timeline. Read-only: these run under publisher_readonly as well."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from .cursor import Cursor, Row, one_row
from .filters import MATCHES, JobFilter
from .states import COUNTED_STATUSES, Status

STATUS_COUNTS = "SELECT status, count(*)::int AS n FROM publish_jobs GROUP BY status"
# Of some statuses only: without 'completed', which holds the history, cheap enough for the
# listener's gauges and the overview every few seconds (publish_jobs_status_idx, index only).
SOME_STATUS_COUNTS = "SELECT status, count(*)::int AS n FROM publish_jobs WHERE status = ANY(%s) GROUP BY status"
BROKER_COUNTS = "SELECT state::text AS state, count(*)::int AS n FROM dramatiq.queue GROUP BY state"
# Per lane (publish_jobs_pending_lane_idx): what waits, since when; and the rate that drains them.
PENDING_BY_LANE = """
    SELECT lane, count(*)::int AS pending, extract(epoch FROM now() - min(created_at))::float8 AS oldest_seconds
      FROM publish_jobs WHERE status = 'pending' GROUP BY lane ORDER BY lane
"""
PAUSED_LANES = "SELECT lane FROM publisher_paused_lanes ORDER BY lane"
COMPLETED_SINCE = """
    SELECT count(*)::int AS n FROM publish_jobs WHERE status = 'completed' AND completed_at > now() - %s
"""
# Of the fresh lane: the backlog's oldest waits long by design (and a paused lane as long as it is).
OLDEST_PENDING = """
    SELECT id, file_id::text AS file_id, created_at,
           extract(epoch FROM now() - created_at)::float8 AS age_seconds
      FROM publish_jobs WHERE status = 'pending' AND lane = 0 ORDER BY id LIMIT 1
"""
LAST_HOUR = """
    SELECT count(*) FILTER (WHERE status = 'completed' AND completed_at > now() - interval '1 hour')::int
               AS completed,
           count(*) FILTER (WHERE status = 'failed' AND updated_at > now() - interval '1 hour')::int AS failed,
           avg(extract(epoch FROM completed_at - started_at))
               FILTER (WHERE status = 'completed' AND completed_at > now() - interval '1 hour')::float8
               AS avg_processing_seconds,
           avg(extract(epoch FROM completed_at - created_at))
               FILTER (WHERE status = 'completed' AND completed_at > now() - interval '1 hour')::float8
               AS avg_total_seconds
      FROM publish_jobs
     WHERE (status = 'completed' AND completed_at > now() - interval '1 hour')
        OR (status = 'failed' AND updated_at > now() - interval '1 hour')
"""
LAST_FAILURES = """
    SELECT id, file_id::text AS file_id, updated_at, retry_count, max_retries, stage, last_error
      FROM publish_jobs WHERE status = 'failed' ORDER BY updated_at DESC LIMIT %s
"""
# Minute by minute over the last %(minutes)s: jobs completed and failed (a failure counts in the minute
# it was last updated), and the p50/p95 seconds from INSERT to completed of each minute's completions
# (two index ranges: publish_jobs_status_completed_idx and publish_jobs_failed_at_idx).
PER_MINUTE = """
    WITH since AS (SELECT date_trunc('minute', now()) - make_interval(mins => %(minutes)s - 1) AS t),
    ended AS (
        SELECT date_trunc('minute', completed_at) AS minute, extract(epoch FROM completed_at - created_at) AS seconds
          FROM publish_jobs, since WHERE status = 'completed' AND completed_at >= since.t
        UNION ALL
        SELECT date_trunc('minute', updated_at), NULL
          FROM publish_jobs, since WHERE status = 'failed' AND updated_at >= since.t)
    SELECT m.minute, count(e.seconds)::int AS completed, (count(e.minute) - count(e.seconds))::int AS failed,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY e.seconds)::float8 AS p50_seconds,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY e.seconds)::float8 AS p95_seconds
      FROM since, generate_series(since.t, date_trunc('minute', now()), interval '1 minute') AS m(minute)
      LEFT JOIN ended e ON e.minute = m.minute
     GROUP BY m.minute ORDER BY m.minute
"""
# Counted from publish_jobs_failed_at_idx alone; each reason's latest, one probe of publish_jobs_failed_reason_idx.
FAILURES_BY_REASON = """
    SELECT r.reason, r.count, l.last_error AS example, l.id AS latest_job, l.updated_at AS latest_at
      FROM (SELECT coalesce(failure_reason, 'untyped') AS reason, count(*)::int AS count
              FROM publish_jobs WHERE status = 'failed' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20) r
     CROSS JOIN LATERAL (
           SELECT j.id, j.last_error, j.updated_at FROM publish_jobs j
            WHERE j.status = 'failed' AND coalesce(j.failure_reason, 'untyped') = r.reason
            ORDER BY j.updated_at DESC LIMIT 1) l
     ORDER BY r.count DESC, r.reason
"""
# Silent: not seen for longer than a host stays alive (host_alive_seconds, written by
# the listener: shared_settings), the interval after which its jobs are handed out again;
# a host no process of which beats any more is silent too. A draining host is listed, with
# the jobs it still has to finish (running there or waiting for their next step there:
# publish_jobs_host_idx), whether or not its processes still beat.
HOSTS = """
    WITH beats AS (
        SELECT w.host_id, count(*)::int AS processes, sum(w.threads)::int AS threads,
               min(w.started_at) AS started_at, max(w.seen_at) AS seen_at
          FROM publisher_workers w GROUP BY w.host_id),
    hosts AS (
        SELECT coalesce(b.host_id, d.host_id) AS host_id, coalesce(b.processes, 0) AS processes,
               coalesce(b.threads, 0) AS threads, b.started_at, b.seen_at,
               d.since IS NOT NULL AS draining, d.since AS draining_since, d.drained_by
          FROM beats b FULL JOIN publisher_draining_hosts d ON d.host_id = b.host_id)
    SELECT h.*, extract(epoch FROM now() - h.seen_at)::float8 AS seen_seconds_ago,
           h.seen_at IS NULL OR coalesce(extract(epoch FROM now() - h.seen_at) > (
               SELECT CASE WHEN s.value ~ '^[0-9]+(\\.[0-9]+)?$' THEN s.value::float8 END
                 FROM publisher_settings s WHERE s.name = 'host_alive_seconds'), false) AS silent,
           (SELECT count(*)::int FROM publish_jobs j
             WHERE j.host_id = h.host_id AND j.status = 'processing') AS running,
           (SELECT count(*)::int FROM publish_jobs j
             WHERE j.host_id = h.host_id AND j.status IN ('queued', 'processing')) AS to_finish
      FROM hosts h ORDER BY h.host_id
"""
# Each file's smallest published variant (by its recorded width), whatever VARIANTS named it.
LATEST_PUBLISHES = """
    SELECT f.id::text AS file_id, f.raid_key, f.published_at, f.width, f.height, f.placeholder, f.dominant_color,
           (SELECT v.value ->> 'url' FROM jsonb_each(f.variants) AS v(name, value)
             WHERE jsonb_typeof(v.value) = 'object' AND jsonb_typeof(v.value -> 'width') = 'number'
             ORDER BY (v.value ->> 'width')::numeric, v.name LIMIT 1) AS thumb_url,
           (SELECT max(j.id) FROM publish_jobs j WHERE j.file_id = f.id) AS job_id
      FROM auction_files f
     WHERE f.publish_status = 'published' AND f.deleted_at IS NULL AND f.published_at IS NOT NULL
       AND jsonb_typeof(f.variants) = 'object'
     ORDER BY f.published_at DESC LIMIT %s
"""
PUBLISHED_FILES = """
    SELECT id::text AS id, raid_key, variants, width, height, recipe, placeholder, dominant_color, published_at
      FROM auction_files
     WHERE publish_status = 'published' AND deleted_at IS NULL AND variants IS NOT NULL
     ORDER BY published_at DESC, id
     LIMIT %s
"""
LIST_JOBS = f"""
    SELECT j.id, j.file_id::text AS file_id, f.raid_key, j.status, j.stage, j.retry_count, j.max_retries,
           j.failure_reason, j.last_error, j.created_at, j.updated_at, j.completed_at
      FROM publish_jobs j JOIN auction_files f ON f.id = j.file_id
     WHERE {MATCHES}
     ORDER BY j.id DESC LIMIT %(limit)s OFFSET %(offset)s
"""
JOB = """
    SELECT j.id, j.file_id::text AS file_id, j.status, j.stage, j.retry_count, j.max_retries,
           j.failure_reason, j.last_error, j.created_at, j.started_at, j.updated_at, j.completed_at,
           f.raid_key, f.publish_status, f.variants, f.deleted_at
      FROM publish_jobs j JOIN auction_files f ON f.id = j.file_id
     WHERE j.id = %s
"""
TIMELINE = """
    SELECT at, from_status, to_status, stage, retry_count, last_error
      FROM publish_job_events WHERE job_id = %s ORDER BY id
"""


def job_counts(cur: Cursor, statuses: Iterable[Status] | None = None) -> dict[str, int]:
    """Jobs per status, of `statuses` only (None: every one, the history's completed jobs included,
    which reads an index entry per job of the last COMPLETED_JOB_RETENTION_DAYS)."""
    if statuses is None:
        cur.execute(STATUS_COUNTS)
    else:
        cur.execute(SOME_STATUS_COUNTS, ([str(s) for s in statuses],))
    return {r["status"]: r["n"] for r in cur.fetchall()}


def status_snapshot(cur: Cursor, failures: int = 10, count_completed: bool = True) -> dict[str, Any]:
    """Everything `publisher-admin status` and the listener's gauges show."""
    jobs = job_counts(cur, None if count_completed else COUNTED_STATUSES)
    cur.execute(BROKER_COUNTS)
    broker = {r["state"]: r["n"] for r in cur.fetchall()}
    oldest = oldest_pending(cur)
    cur.execute(LAST_HOUR)
    last_hour = dict(one_row(cur))
    last_failures: Sequence[Row] = []
    if failures:
        cur.execute(LAST_FAILURES, (failures,))
        last_failures = cur.fetchall()
    return {
        "jobs": jobs, "broker": broker, "oldest_pending": oldest,
        "oldest_pending_seconds": oldest["age_seconds"] if oldest else None,
        "last_hour": last_hour, "last_failures": last_failures,
    }


def oldest_pending(cur: Cursor) -> Row | None:
    cur.execute(OLDEST_PENDING)
    return cur.fetchone()


def per_minute(cur: Cursor, minutes: int) -> Sequence[Row]:
    """The last `minutes` minutes, oldest first: completed, failed, and the p50/p95 seconds from INSERT
    to completed of that minute's completions (None without any)."""
    cur.execute(PER_MINUTE, {"minutes": minutes})
    return cur.fetchall()


def last_hour_per_minute(cur: Cursor) -> Sequence[Row]:
    return per_minute(cur, 60)


def failures_by_reason(cur: Cursor) -> Sequence[Row]:
    cur.execute(FAILURES_BY_REASON)
    return cur.fetchall()


def hosts(cur: Cursor) -> Sequence[Row]:
    """The worker hosts from their processes' beats, and the hosts an operator drains; `silent`
    past the interval a host stays alive."""
    cur.execute(HOSTS)
    return cur.fetchall()


def latest_publishes(cur: Cursor, limit: int) -> Sequence[Row]:
    cur.execute(LATEST_PUBLISHES, (limit,))
    return cur.fetchall()


def published_files(cur: Cursor, limit: int) -> Sequence[Row]:
    cur.execute(PUBLISHED_FILES, (limit,))
    return cur.fetchall()


def list_jobs(cur: Cursor, where: JobFilter, *, limit: int = 50, offset: int = 0) -> Sequence[Row]:
    """The jobs `where` matches, the newest first."""
    cur.execute(LIST_JOBS, {**where.params(), "limit": limit, "offset": offset})
    return cur.fetchall()


def last_day_per_minute(cur: Cursor) -> Sequence[Row]:
    return per_minute(cur, 24 * 60)


def pending_by_lane(cur: Cursor) -> Sequence[Row]:
    """Per lane with pending jobs: how many, and the age of the oldest in seconds."""
    cur.execute(PENDING_BY_LANE)
    return cur.fetchall()


def paused_lanes(cur: Cursor) -> set[int]:
    cur.execute(PAUSED_LANES)
    return {r["lane"] for r in cur.fetchall()}


def completed_since(cur: Cursor, window: timedelta) -> int:
    cur.execute(COMPLETED_SINCE, (window,))
    return one_row(cur)["n"]


def show_job(cur: Cursor, job_id: int) -> Row | None:
    """One job, its file and variants, and every status change it went through."""
    cur.execute(JOB, (job_id,))
    job = cur.fetchone()
    if job is None:
        return None
    cur.execute(TIMELINE, (job_id,))
    return {**job, "timeline": cur.fetchall()}

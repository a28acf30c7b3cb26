"""The operations page's overview, read in one transaction: jobs per status, the
last hour minute by minute, the oldest pending job, failures grouped by their
typed reason, the worker hosts from their heartbeats, and the latest publishes.
Read-only (it runs under publisher_readonly); /api/summary serves it as JSON."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from publisher.jobs import queries

PER_MINUTE = """
    WITH since AS (SELECT date_trunc('minute', now()) - interval '59 minutes' AS t),
    ended AS (
        SELECT 'completed' AS status, date_trunc('minute', completed_at) AS minute
          FROM publish_jobs, since WHERE status = 'completed' AND completed_at >= since.t
        UNION ALL
        SELECT 'failed', date_trunc('minute', updated_at)
          FROM publish_jobs, since WHERE status = 'failed' AND updated_at >= since.t)
    SELECT m.minute,
           count(e.status) FILTER (WHERE e.status = 'completed')::int AS completed,
           count(e.status) FILTER (WHERE e.status = 'failed')::int AS failed
      FROM since, generate_series(since.t, date_trunc('minute', now()), interval '1 minute') AS m(minute)
      LEFT JOIN ended e ON e.minute = m.minute
     GROUP BY m.minute ORDER BY m.minute
"""
FAILURES_BY_REASON = """
    SELECT coalesce(failure_reason, 'untyped') AS reason, count(*)::int AS count,
           (array_agg(last_error ORDER BY updated_at DESC))[1] AS example,
           (array_agg(id ORDER BY updated_at DESC))[1] AS latest_job, max(updated_at) AS latest_at
      FROM publish_jobs WHERE status = 'failed'
     GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 20
"""
HOSTS = """
    SELECT w.host_id, count(*)::int AS processes, sum(w.threads)::int AS threads, min(w.started_at) AS started_at,
           max(w.seen_at) AS seen_at, extract(epoch FROM now() - max(w.seen_at))::float8 AS seen_seconds_ago,
           (SELECT count(*)::int FROM publish_jobs j
             WHERE j.host_id = w.host_id AND j.status = 'processing') AS running
      FROM publisher_workers w GROUP BY w.host_id ORDER BY w.host_id
"""
LATEST_PUBLISHES = """
    SELECT f.id::text AS file_id, f.raid_key, f.published_at, f.width, f.height, f.placeholder, f.dominant_color,
           f.variants -> 'thumb' ->> 'url' AS thumb_url,
           (SELECT max(j.id) FROM publish_jobs j WHERE j.file_id = f.id) AS job_id
      FROM auction_files f
     WHERE f.publish_status = 'published' AND f.deleted_at IS NULL AND f.published_at IS NOT NULL
     ORDER BY f.published_at DESC LIMIT %s
"""

#: A host whose processes have not beaten for this long is shown as silent.
SILENT_AFTER_SECONDS = 60
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def overview(cur, *, publishes: int = 12) -> dict:
    cur.execute(queries.STATUS_COUNTS)
    counted = {r["status"]: r["n"] for r in cur.fetchall()}
    jobs = {s: counted.get(s, 0) for s in queries.JOB_STATUSES}
    cur.execute(queries.OLDEST_PENDING)
    oldest = cur.fetchone()
    cur.execute(PER_MINUTE)
    minutes = cur.fetchall()
    cur.execute(FAILURES_BY_REASON)
    failures = cur.fetchall()
    cur.execute(HOSTS)
    hosts = [{**h, "silent": h["seen_seconds_ago"] > SILENT_AFTER_SECONDS} for h in cur.fetchall()]
    cur.execute(LATEST_PUBLISHES, (publishes,))
    latest = [_safe_publish(r) for r in cur.fetchall()]
    return {
        "read_at": datetime.now(timezone.utc),
        "jobs": jobs,
        "last_hour": {
            "completed": sum(m["completed"] for m in minutes),
            "failed": sum(m["failed"] for m in minutes),
            "per_minute": minutes,
        },
        "oldest_pending": oldest,
        "failures": failures,
        "hosts": hosts,
        "latest_publishes": latest,
    }


def _safe_publish(row: dict) -> dict:
    """Only a colour that is one goes into a style attribute; only a data: WebP, or
    nothing, is drawn as the placeholder."""
    colour = row["dominant_color"]
    placeholder = row["placeholder"]
    return {
        **row,
        "dominant_color": colour if colour and _COLOUR.fullmatch(colour) else None,
        "placeholder": placeholder if placeholder and placeholder.startswith("data:image/webp;base64,") else None,
    }

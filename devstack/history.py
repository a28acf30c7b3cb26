"""A year-like history in a database with sql/ applied (issue 26), loaded with SQL, not through the
pipeline: an auction house that publishes 20,000 photos a day and keeps 90 days of jobs.

- `files` auction files, published over the last `days` days (their objects tracked, as upload
  leaves them); a file has a job about every `files / jobs` of the days;
- `jobs` finished jobs spread over those days: completed, failed with a reason, cancelled;
- four status events per job (pending, queued, processing, and how it ended);
- the outbox: one completion event per job of the last week, delivered.

Everything is derived from the row numbers (file n's id is md5('history-file-n')), so the same
arguments make the same rows. Triggers are bypassed while loading (the session's replication
role, which needs a superuser): the events they would write are written here directly.

    python -m devstack.history DATABASE_URL [--jobs 2000000] [--files 500000]
"""

from __future__ import annotations

import argparse
import time

import psycopg2

from publisher.settings import fixed

#: Days of jobs kept: the history maintenance keeps.
DAYS = round(fixed.COMPLETED_JOB_RETENTION_DAYS)
#: Of finished jobs: completed, failed and cancelled, in this proportion (per 1000).
MIX = {"completed": 940, "failed": 45, "cancelled": 15}
#: Failure reasons, by weight.
REASONS = {"origin_404": 4, "corrupt_image": 3, "origin_timeout": 2, "source_too_large": 1}

_FILES = """
INSERT INTO auction_files (id, raid_key, publish_status, variants, published_at, created_at, recipe, width, height)
SELECT md5('history-file-' || n)::uuid, 'history/lot-' || n || '.jpg', 'published',
       jsonb_build_object(
           'thumb', jsonb_build_object('width', 400, 'height', 300, 'bytes', 18000,
               'formats', jsonb_build_object('webp', jsonb_build_object(
                   'key', 'media/' || md5('history-file-' || n)::uuid || '/thumb-' || substr(md5('t' || n), 1, 16)
                          || '.webp', 'content_type', 'image/webp', 'bytes', 18000, 'quality', 80))),
           'display', jsonb_build_object('width', 1600, 'height', 1200, 'bytes', 160000,
               'formats', jsonb_build_object('webp', jsonb_build_object(
                   'key', 'media/' || md5('history-file-' || n)::uuid || '/display-' || substr(md5('d' || n), 1, 16)
                          || '.webp', 'content_type', 'image/webp', 'bytes', 160000, 'quality', 80)))),
       now() - make_interval(secs => %(span)s * (1 - n::float8 / %(files)s)) + interval '10 seconds',
       now() - make_interval(secs => %(span)s * (1 - n::float8 / %(files)s)),
       'history', 1600, 1200
  FROM generate_series(1, %(files)s) AS n
"""

_OBJECTS = """
INSERT INTO publisher_objects (key, file_id, state, since)
SELECT v.value -> 'formats' -> 'webp' ->> 'key', f.id, 'published', f.published_at
  FROM auction_files f, jsonb_each(f.variants) AS v
 WHERE f.raid_key LIKE 'history/%%'
"""

# Job j belongs to file 1 + (j * 7919) %% files (a spread, not runs of one file), created at its
# share of the span; its status (MIX) and failure reason (REASONS) from a hash of j.
_JOBS = """
INSERT INTO publish_jobs (file_id, status, retry_count, max_retries, last_error, created_at, started_at,
                          completed_at, stage, updated_at, host_id, failure_reason, attempt_token)
SELECT md5('history-file-' || (1 + (j * 7919) %% %(files)s))::uuid, s.status,
       CASE s.status WHEN 'failed' THEN 5 ELSE (j %% 20 = 0)::int END, 5,
       CASE s.status WHEN 'failed' THEN 'history: ' || s.reason END,
       t.at, t.at + interval '1 second',
       CASE WHEN s.status <> 'cancelled' THEN t.at + interval '4 seconds' END,
       CASE s.status WHEN 'completed' THEN 'upload' ELSE 'fetch' END,
       t.at + interval '4 seconds', 'history-host-' || (j %% 8),
       CASE s.status WHEN 'failed' THEN s.reason END,
       md5('history-token-' || j)::uuid
  FROM generate_series(1, %(jobs)s::bigint) AS j,
       LATERAL (SELECT now() - make_interval(secs => %(span)s * (1 - j::float8 / %(jobs)s)) AS at) t,
       LATERAL (SELECT ('x' || substr(md5('history-job-' || j), 1, 8))::bit(32)::bigint AS h) r,
       LATERAL (SELECT CASE WHEN r.h %% 1000 < %(completed)s THEN 'completed'
                            WHEN r.h %% 1000 < %(completed)s + %(failed)s THEN 'failed'
                            ELSE 'cancelled' END AS status,
                       (%(reasons)s::text[])[1 + (r.h / 1000) %% cardinality(%(reasons)s::text[])] AS reason) s
"""

_EVENTS = """
INSERT INTO publish_job_events (job_id, file_id, from_status, to_status, stage, retry_count, attempt_token,
                                last_error, at)
SELECT j.id, j.file_id, e.from_status, coalesce(e.to_status, j.status), j.stage, j.retry_count, j.attempt_token,
       CASE WHEN e.to_status IS NULL THEN j.last_error END, j.created_at + e.after
  FROM publish_jobs j
 CROSS JOIN (VALUES (NULL, 'pending', interval '0'), ('pending', 'queued', interval '0.1 second'),
                    ('queued', 'processing', interval '1 second'), ('processing', NULL, interval '4 seconds'))
       AS e (from_status, to_status, after)
 WHERE j.host_id LIKE 'history-host-%%'
"""

_OUTBOX = """
INSERT INTO publish_event_outbox (event_id, payload, created_at, attempts, next_attempt_at, delivered_at)
SELECT md5('history-event-' || j.id)::uuid,
       jsonb_build_object('job_id', j.id, 'file_id', j.file_id, 'status', j.status),
       j.completed_at, 1, j.completed_at, j.completed_at + interval '1 second'
  FROM publish_jobs j
 WHERE j.host_id LIKE 'history-host-%%' AND j.completed_at > now() - interval '7 days'
"""

_SPREAD = """
-- Each file's latest job decides its status, as the pipeline leaves it: a file whose last job failed
-- was never published by it (its earlier completed job, if any, published it).
UPDATE auction_files f SET publish_status = 'failed', published_at = NULL, variants = NULL
  FROM (SELECT DISTINCT ON (file_id) file_id, status FROM publish_jobs
         WHERE host_id LIKE 'history-host-%%' ORDER BY file_id, id DESC) last
 WHERE f.id = last.file_id AND last.status = 'failed'
   AND NOT EXISTS (SELECT 1 FROM publish_jobs c WHERE c.file_id = f.id AND c.status = 'completed')
"""


def fill(url: str, jobs: int = 2_000_000, files: int = 500_000, days: int = DAYS) -> dict[str, float]:
    """Loads the history into the database at url; the seconds each part took."""
    params = {"jobs": jobs, "files": files, "span": days * 86400, "completed": MIX["completed"],
              "failed": MIX["failed"], "reasons": [r for r, w in REASONS.items() for _ in range(w)]}
    took = {}
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET LOCAL session_replication_role = replica")  # no triggers, no foreign-key checks
            for name, statement in (("files", _FILES), ("jobs", _JOBS), ("events", _EVENTS),
                                    ("outbox", _OUTBOX), ("file statuses", _SPREAD), ("objects", _OBJECTS)):
                start = time.monotonic()
                cur.execute(statement, params)
                took[name] = time.monotonic() - start
        conn.autocommit = True
        with conn.cursor() as cur:
            start = time.monotonic()
            cur.execute("VACUUM ANALYZE auction_files, publish_jobs, publish_job_events, publish_event_outbox, "
                        "publisher_objects")
            took["vacuum analyze"] = time.monotonic() - start
    finally:
        conn.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--jobs", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=500_000)
    parser.add_argument("--days", type=int, default=DAYS)
    args = parser.parse_args()
    for name, seconds in fill(args.url, args.jobs, args.files, args.days).items():
        print(f"{name}: {seconds:.1f} s")


if __name__ == "__main__":
    main()

"""Intake: how many jobs per second the trigger + listener + broker sustain
when the steps do no image work (workers on bench.noop_actors).

Jobs are inserted one per transaction (one NOTIFY each) as fast as one client
can. Per job the database records created_at (insert), queued_at (claimed by
the listener, in the transaction that enqueues it), started_at (fetch began)
and completed_at. Rates over the run tell where the ceiling is: the listener's
claim + enqueue (created -> queued) or the broker and workers (queued -> completed).

And what the burst leaves in publish_jobs for VACUUM (issue 26): its updates, the share of them that
were HOT (heap-only: no index touched, room on the page), and the dead row versions, read from
pg_stat_user_tables before any vacuum (autovacuum is off for the table during the burst).
"""

from __future__ import annotations

import time

import psycopg2

from . import cpu, queries
from .system import add_files, loadavg, seconds, wait_done


def intake(stack, s3_pid: int, raid_key: str, n: int) -> dict:
    load = loadavg()
    file_ids = add_files(stack, raid_key, n)
    _sql(stack, "ALTER TABLE publish_jobs SET (autovacuum_enabled = false)")
    table_before = _table_stats(stack)
    before = cpu.snapshot(stack, s3_pid)
    conn = psycopg2.connect(stack.db_url)
    conn.autocommit = True
    job_ids = []
    with conn.cursor() as cur:
        for file_id in file_ids:
            cur.execute(queries.REQUEST_ONE, (file_id,))
            job_ids.append(cur.fetchone()[0])
    conn.close()
    rows = wait_done(stack, job_ids, timeout=1800)
    used = cpu.spent(before, cpu.snapshot(stack, s3_pid))
    table_after = _table_stats(stack)
    _sql(stack, "ALTER TABLE publish_jobs RESET (autovacuum_enabled)")
    first = min(r["created_at"] for r in rows)

    def rate(column):
        return n / seconds(max(r[column] for r in rows) - first)

    return {"jobs": n, "insert_per_s": rate("created_at"), "claimed_enqueued_per_s": rate("queued_at"),
            "started_per_s": rate("started_at"), "completed_per_s": rate("completed_at"),
            "loadavg_before": load, "loadavg_after": loadavg(),
            "cpu_ms_per_job": {k: v / n * 1000 for k, v in used.items()},
            "publish_jobs": _table_delta(table_before, table_after, n)}


def _sql(stack, statement: str) -> None:
    conn = psycopg2.connect(stack.db_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


#: The statistics PostgreSQL 15 keeps in shared memory are flushed by each backend within about a
#: second of its transactions: read them after that.
STATS_FLUSH_SECONDS = 1.5


def _table_stats(stack) -> dict:
    time.sleep(STATS_FLUSH_SECONDS)
    conn = psycopg2.connect(stack.db_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT n_tup_upd, n_tup_hot_upd, n_dead_tup, n_live_tup FROM pg_stat_user_tables "
                        "WHERE relname = 'publish_jobs'")
            upd, hot, dead, live = cur.fetchone()
            cur.execute("SELECT coalesce((SELECT option_value FROM pg_options_to_table(reloptions) "
                        "WHERE option_name = 'fillfactor'), '100') FROM pg_class WHERE relname = 'publish_jobs'")
            fillfactor = int(cur.fetchone()[0])
    finally:
        conn.close()
    return {"updates": upd, "hot_updates": hot, "dead_tuples": dead, "live_tuples": live, "fillfactor": fillfactor}


def _table_delta(before: dict, after: dict, jobs: int) -> dict:
    updates = after["updates"] - before["updates"]
    hot = after["hot_updates"] - before["hot_updates"]
    return {"fillfactor": after["fillfactor"], "updates_per_job": updates / jobs,
            "hot_share": hot / updates if updates else 0.0, "dead_tuples_after": after["dead_tuples"],
            "dead_per_job": (after["dead_tuples"] - before["dead_tuples"]) / jobs, "live_tuples": after["live_tuples"]}

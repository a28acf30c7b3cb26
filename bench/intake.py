"""Intake: how many jobs per second the trigger + listener + broker sustain
when the steps do no image work (workers on bench.noop_actors).

Jobs are inserted one per transaction (one NOTIFY each) as fast as one client
can. Per job the database records created_at (insert), queued_at (claimed by
the listener, in the transaction that enqueues it), started_at (fetch began)
and completed_at. Rates over the run tell where the ceiling is: the listener's
claim + enqueue (created -> queued) or the broker and workers (queued -> completed).
"""

from __future__ import annotations

import psycopg2

from . import cpu, queries
from .system import add_files, loadavg, seconds, wait_done


def intake(stack, s3_pid: int, raid_key: str, n: int) -> dict:
    load = loadavg()
    file_ids = add_files(stack, raid_key, n)
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
    first = min(r["created_at"] for r in rows)

    def rate(column):
        return n / seconds(max(r[column] for r in rows) - first)

    return {"jobs": n, "insert_per_s": rate("created_at"), "claimed_enqueued_per_s": rate("queued_at"),
            "started_per_s": rate("started_at"), "completed_per_s": rate("completed_at"),
            "loadavg_before": load, "loadavg_after": loadavg(),
            "cpu_ms_per_job": {k: v / n * 1000 for k, v in used.items()}}

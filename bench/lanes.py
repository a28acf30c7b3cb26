"""The bench's `lanes` part (issue 26): a fresh lot's pickup on a year's history, and behind the
catalogue's backlog. Workers run bench.noop_actors (no image work), so what is timed is the
contract: the INSERT, the listener's claim and enqueue, the broker, the first step's start.

1. Pickup on an empty database and on one holding the history (devstack/history.py), each in a
   system of its own: fresh lots one at a time, INSERT -> fetch started.
2. On the history: a republish of `backlog` files fills the backlog lane; the workers' capacity is
   the backlog's completions per second while nothing else arrives; then fresh lots arrive at
   `fresh_per_s` for `window` seconds: their pickup, whether any backlog job was claimed between a
   fresh lot's INSERT and its claim (a fresh lot behind a backlog job), and how much of the
   capacity the fresh lots left over went to the backlog.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg2

from devstack import history

from . import queries, stats
from .system import add_files, loadavg, seconds, wait_done

#: Fresh lots timed one at a time in each pickup run.
PICKUPS = 40
#: Fresh lots per second while the backlog drains (the issue's steady rate).
FRESH_PER_S = 1.0
BACKLOG_RECIPE = "bench-lanes-republish"
# Completed backlog jobs in a window: the lane's rate.
BACKLOG_DONE_SINCE = """
    SELECT count(*)::int AS n FROM publish_jobs
     WHERE republish_recipe = %s AND status = 'completed' AND completed_at >= %s
"""
# When the backlog jobs were claimed (the claim's transaction start), from a time on.
BACKLOG_CLAIMED_SINCE = "SELECT queued_at FROM publish_jobs WHERE republish_recipe = %s AND queued_at >= %s"
NOW = "SELECT now() AS t"


def lanes_part(services, shape: dict, raid_key: str, jobs: int, files: int, backlog: int, window: float,
               fresh_per_s: float) -> dict:
    with services.system(workers_module="bench.noop_actors", **shape) as stack:
        empty = _pickups(stack, raid_key, PICKUPS)
    with services.system(workers_module="bench.noop_actors", prepare=lambda s: _settled_history(s, jobs, files),
                         **shape) as stack:
        on_history = _pickups(stack, raid_key, PICKUPS)
        queued = stack.sql("SELECT publisher_request_republish(%s, %s) AS n", (BACKLOG_RECIPE, backlog))[0]["n"]
        capacity = _backlog_rate(stack, window)
        fresh, committed, backlog_rate = _fresh_lots_over_backlog(stack, raid_key, window, fresh_per_s)
        rows = wait_done(stack, fresh, timeout=120)
        claimed = [r["queued_at"] for r in stack.sql(BACKLOG_CLAIMED_SINCE, (BACKLOG_RECIPE, min(committed)))]
    # A backlog job claimed by a claim that began after a fresh lot's INSERT committed and before
    # that lot's own claim: the lot was visible to it, and waited behind the backlog.
    behind = sum(1 for r, at in zip(rows, committed) for b in claimed if at < b < r["queued_at"])
    under_backlog = stats.summary_ms([seconds(r["started_at"] - r["created_at"]) for r in rows])
    # Where a fresh lot waits: for its claim (the listener), then for a worker to begin it (broker, threads).
    claim_wait = stats.summary_ms([seconds(r["queued_at"] - r["created_at"]) for r in rows])
    start_wait = stats.summary_ms([seconds(r["started_at"] - r["queued_at"]) for r in rows])
    left_over = capacity - fresh_per_s
    return {"history_jobs": jobs, "backlog_jobs": queued, "window_s": window, "fresh_per_s": fresh_per_s,
            "pickup_empty": empty, "pickup_history": on_history, "pickup_under_backlog": under_backlog,
            "history_over_empty_p50": on_history["p50_ms"] / empty["p50_ms"],
            "history_over_empty_p99": on_history["p99_ms"] / empty["p99_ms"],
            "backlog_over_idle_p99": under_backlog["p99_ms"] / on_history["p99_ms"],
            "under_backlog_until_claimed": claim_wait, "under_backlog_claimed_until_begun": start_wait,
            "fresh_behind_a_backlog_job": behind, "capacity_per_s": capacity,
            "backlog_per_s_with_fresh": backlog_rate,
            "backlog_share_of_left_over": backlog_rate / left_over if left_over > 0 else None,
            "loadavg": loadavg()}


def _settled_history(stack, jobs: int, files: int) -> None:
    """The history, loaded and then written out (CHECKPOINT): a year's database is not in the middle of
    the checkpoint that a bulk load of millions of rows sets off, whose writes the pickups would time."""
    history.fill(stack.db_url, jobs, files)
    conn = psycopg2.connect(stack.db_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("CHECKPOINT")
    finally:
        conn.close()


def _pickups(stack, raid_key: str, n: int) -> dict:
    rows = []
    for file_id in add_files(stack, raid_key, n):
        rows += wait_done(stack, [stack.request_publish(file_id)], timeout=60)
    return stats.summary_ms([seconds(r["started_at"] - r["created_at"]) for r in rows])


def _backlog_rate(stack, window: float) -> float:
    """The backlog lane's completions per second over `window` seconds, nothing else arriving."""
    since = stack.sql(NOW)[0]["t"]
    time.sleep(window)  # a rate over a window of time: there is no event to await
    return stack.sql(BACKLOG_DONE_SINCE, (BACKLOG_RECIPE, since))[0]["n"] / window


def _fresh_lots_over_backlog(stack, raid_key: str, window: float,
                             per_s: float) -> tuple[list[int], list[datetime], float]:
    """Fresh lots inserted at `per_s` for `window` seconds; their ids, when each INSERT had committed
    (this machine's clock, the database's too), and the backlog's completions per second meanwhile."""
    file_ids = add_files(stack, raid_key, int(window * per_s))
    conn = psycopg2.connect(stack.db_url)
    conn.autocommit = True
    job_ids, committed = [], []
    try:
        with conn.cursor() as cur:
            cur.execute(NOW)
            since = cur.fetchone()[0]
            start = time.monotonic()
            for n, file_id in enumerate(file_ids):
                time.sleep(max(0.0, start + n / per_s - time.monotonic()))  # the arrival rate
                cur.execute(queries.REQUEST_ONE, (file_id,))  # autocommit: committed when it returns
                committed.append(datetime.now(UTC))
                job_ids.append(cur.fetchone()[0])
            time.sleep(max(0.0, start + window - time.monotonic()))
            cur.execute(BACKLOG_DONE_SINCE, (BACKLOG_RECIPE, since))
            done = cur.fetchone()[0]
    finally:
        conn.close()
    return job_ids, committed, done / window


def lines(r: dict) -> list[str]:
    def p(s):
        return f"p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms"
    share = r["backlog_share_of_left_over"]
    return [f"lanes: no-op steps, {r['history_jobs']:,} jobs of history, a backlog of {r['backlog_jobs']:,} "
            f"(load {r['loadavg']})",
            f"  pickup, empty database:      {p(r['pickup_empty'])}",
            f"  pickup, history:             {p(r['pickup_history'])}  ({r['history_over_empty_p50']:.2f}x / "
            f"{r['history_over_empty_p99']:.2f}x of empty)",
            f"  pickup, behind the backlog:  {p(r['pickup_under_backlog'])}  (p99 {r['backlog_over_idle_p99']:.2f}x "
            f"of idle; fresh lots behind a backlog job: {r['fresh_behind_a_backlog_job']})",
            f"    of which until claimed {p(r['under_backlog_until_claimed'])}; "
            f"claimed until begun {p(r['under_backlog_claimed_until_begun'])}",
            f"  backlog: {r['capacity_per_s']:.1f} jobs/s alone, {r['backlog_per_s_with_fresh']:.1f} jobs/s with "
            f"{r['fresh_per_s']:g} fresh lot/s: "
            + (f"{share:.0%} of the capacity left over" if share is not None else "no capacity left over"), ""]

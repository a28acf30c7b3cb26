"""Pickup latency: jobs inserted one at a time into an idle system; the time
from the INSERT to the fetch step starting, and, for the 12 MP photo, to the
job completed.

Both ends are the database's clock: created_at is the inserting transaction's
now() (one autocommit statement, so it is also the commit, within a fraction
of a millisecond), started_at is set by publisher_begin_step when fetch starts.
"""

from __future__ import annotations

from . import stats
from .system import add_files, loadavg, seconds, wait_done


def one_at_a_time(stack, raid_key: str, n: int, timeout: float = 300) -> list[dict]:
    """n jobs, each inserted once the previous one has completed (the system is idle in between)."""
    rows = []
    for file_id in add_files(stack, raid_key, n):
        job_id = stack.request_publish(file_id)
        rows += wait_done(stack, [job_id], timeout)
    return rows


def pickup_latency(stack, raid_key: str, n: int) -> dict:
    load = loadavg()
    rows = one_at_a_time(stack, raid_key, n)
    result = stats.summary_ms([seconds(r["started_at"] - r["created_at"]) for r in rows])
    result["insert_to_completed"] = stats.summary_ms([seconds(r["completed_at"] - r["created_at"]) for r in rows])
    result.update(image=raid_key, loadavg=load)
    return result


def insert_to_completed(stack, raid_key: str, n: int) -> dict:
    load = loadavg()
    rows = one_at_a_time(stack, raid_key, n)
    totals = [seconds(r["completed_at"] - r["created_at"]) for r in rows]
    return {"image": raid_key, "n": n, "median_s": stats.median(totals), "runs_s": totals,
            "pickup_median_ms": stats.median([seconds(r["started_at"] - r["created_at"]) * 1000 for r in rows]),
            "loadavg": load}

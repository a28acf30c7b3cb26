"""Throughput: a burst of jobs through the whole system against the in-process
bound (the same images through the variant step alone, same worker shape)."""

from __future__ import annotations

import sys

from . import cpu, measure, queries
from .system import add_files, loadavg, seconds, wait_done


def burst(stack, s3_pid: int, raid_key: str, n: int, timeout: float = 3600) -> dict:
    """n jobs inserted in one statement (one NOTIFY each); time from the first
    insert to the last completion, all by the database's clock; CPU seconds
    per job of each component."""
    load = loadavg()
    file_ids = add_files(stack, raid_key, n)
    before = cpu.snapshot(stack, s3_pid)
    rows = stack.sql(queries.REQUEST_MANY, (file_ids,))
    done = wait_done(stack, [r["id"] for r in rows], timeout)
    used = cpu.spent(before, cpu.snapshot(stack, s3_pid))
    span = seconds(max(r["completed_at"] for r in done) - min(r["created_at"] for r in done))
    return {"jobs": n, "seconds": span, "jobs_per_min": n / span * 60, "loadavg_before": load,
            "loadavg_after": loadavg(), "cpu_s_per_job": {k: v / n for k, v in used.items()}}


def in_process_bound(path: str, count: int, processes: int, threads: int) -> dict:
    load = loadavg()
    machine_before = cpu.machine_busy_s()
    result = measure.run_child([sys.executable, "-m", "bench.inprocess", str(path), str(count),
                                str(processes), str(threads)])
    others = max(0.0, cpu.machine_busy_s() - machine_before - result["process_cpu_s"])
    result.update(loadavg_before=load, loadavg_after=loadavg(), cpu_s_per_image=result["process_cpu_s"] / count,
                  other_users_cpu_s_per_image=others / count)
    return result

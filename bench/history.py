"""The bench's `history` part (issue 26): the job store's hot paths on a year-sized history.

A database of its own gets devstack/history.py's history (2 million finished jobs of 90 days, 8
million events, 500,000 files, a week of outbox), loaded with SQL; then devstack/hot_paths.py takes
fresh lots through every hot path: once with auto_explain (any sequential scan of publish_jobs or
publish_job_events is reported), then `runs` times for the time each path takes (p50, p95, max).

    .venv/bin/python -m bench.run --parts history [--history-jobs 2000000] [--history-upgrade-from main]

With --history-upgrade-from REF, also the upgrade: REF's sql/ applied to a database of its own, the
history loaded into it, then each file of this tree's sql/ applied and timed (what `publisher-admin
migrate` does on a year-old installation).
"""

from __future__ import annotations

import io
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from devstack import history, hot_paths

from . import history_ops
from .stats import percentile

SQL = Path(__file__).resolve().parent.parent / "sql"
#: Runs of each publisher-admin command (a process each).
ADMIN_RUNS = 5


def history_part(server, jobs: int, files: int, runs: int) -> dict:
    url = server.create_database("mp_bench_history")
    try:
        server.apply_sql(url)
        loaded = history.fill(url, jobs=jobs, files=files)
        planned = hot_paths.run(url)
        scans = {name: sorted(planned[name].sequential_scans()) for name in hot_paths.HOT_PATHS
                 if planned[name].sequential_scans()}
        timings: dict[str, list[float]] = {}
        for _ in range(runs):
            for name, path in hot_paths.run(url, explain=False).items():
                timings.setdefault(name, []).append(path.seconds * 1000)
        return {"jobs": jobs, "files": files, "load_seconds": {k: round(v, 1) for k, v in loaded.items()},
                "sequential_scans": scans, "runs": runs,
                "ms": {name: {"p50": round(statistics.median(v), 2), "p95": round(percentile(v, 95), 2),
                              "max": round(max(v), 2)} for name, v in timings.items()},
                "console_ms": history_ops.console_ms(url, runs),
                "admin_seconds": history_ops.admin_seconds(url, ADMIN_RUNS),
                # Last: it deletes the oldest day.
                "purge_day": history_ops.purge_day(url, history.DAYS)}
    finally:
        server.drop_database(url)


def upgrade_seconds(server, previous: str, jobs: int, files: int) -> dict[str, float]:
    """Seconds each file of sql/ takes over `previous`'s schema holding the history."""
    url = server.create_database("mp_bench_upgrade")
    try:
        with tempfile.TemporaryDirectory() as folder:
            archive = subprocess.run(["git", "archive", previous, "sql"], cwd=SQL.parent, check=True,
                                     capture_output=True).stdout
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(folder, filter="data")
            server.apply_sql(url, Path(folder) / "sql")
        history.fill(url, jobs=jobs, files=files)
        took = {}
        for path in sorted(SQL.glob("*.sql")):
            start = time.monotonic()
            subprocess.run([server.psql, url, "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path)], check=True,
                           capture_output=True)
            took[path.name] = round(time.monotonic() - start, 2)
        return took
    finally:
        server.drop_database(url)




def lines(h: dict) -> list[str]:
    out = [f"history: {h['jobs']:,} jobs, {h['files']:,} files, loaded in "
           + ", ".join(f"{k} {v} s" for k, v in h["load_seconds"].items()),
           f"  sequential scans of the big tables on hot paths: {h['sequential_scans'] or 'none'}",
           f"  {'path':32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}   ({h['runs']} runs)"]
    for name, t in h["ms"].items():
        out.append(f"  {name:32} {t['p50']:8.2f} {t['p95']:8.2f} {t['max']:8.2f}")
    out.append(f"  {'console route':32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}   ({h['runs']} runs)")
    for name, t in h["console_ms"].items():
        out.append(f"  {name:32} {t['p50']:8.1f} {t['p95']:8.1f} {t['max']:8.1f}")
    for name, t in h["admin_seconds"].items():
        out.append(f"  publisher-admin {name}: {t['p50']} s p50, {t['max']} s max ({ADMIN_RUNS} runs)")
    for what, p in h["purge_day"].items():
        out.append(f"  the oldest day's purge of {what.replace('_', ' ')}: {p['deleted']:,} rows in {p['seconds']} s, "
                   f"{p['batches']} batches, the longest {p['longest_batch_seconds']} s")
    if "upgrade_seconds" in h:
        took = ", ".join(f"{k} {v} s" for k, v in h["upgrade_seconds"].items())
        out.append(f"  upgrade from {h['upgrade_from']}: {took}")
    return out + [""]

"""What operators do on a year-sized history (issue 26), for the bench's `history` part: the console's
routes, `publisher-admin status` and `list --json`, and one day's purge of the 90-day history.

- the console: each route `runs` times through the app (Starlette's TestClient: the page's own
  reads, templates and JSON, no network), p50 / p95 / max;
- the CLI: each command `runs` times as an operator runs it (a new process each), wall seconds;
- the purge: the day that passed retention (the history's oldest day) deleted as maintenance
  deletes it, batch by batch, each batch one transaction: the longest batch is the longest any
  row lock is held.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import psycopg2
import psycopg2.extras

from listener.maintenance import BATCH
from publisher.jobs.store import maintenance

from .stats import percentile


def console_ms(url: str, runs: int) -> dict[str, dict[str, float]]:
    from starlette.testclient import TestClient

    from publisher.settings.web import load_web_settings
    from publisher.web.app import create_app

    failed_job, file_id = _one(url, "SELECT id, file_id::text AS file_id FROM publish_jobs "
                                    "WHERE status = 'failed' ORDER BY id DESC LIMIT 1")
    routes = {"/": "/", "/api/summary": "/api/summary", "/jobs?status=failed": "/jobs?status=failed",
              "/jobs/<id>": f"/jobs/{failed_job}", "search: RAID key prefix": "/jobs?q=history/lot-4711",
              "search: file id": f"/jobs?q={file_id}", "/charts": "/charts"}
    app = create_app(load_web_settings({"DATABASE_URL": url, "CDN_BASE_URL": "https://cdn.example"}))
    timings: dict[str, list[float]] = {name: [] for name in routes}
    with TestClient(app, base_url="http://localhost") as web:
        for _ in range(runs):
            for name, route in routes.items():
                start = time.perf_counter()
                response = web.get(route)
                timings[name].append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, (route, response.status_code)
    return {name: _summary(ms) for name, ms in timings.items()}


def admin_seconds(url: str, runs: int) -> dict[str, dict[str, float]]:
    commands = {"status": ["status"], "list --json": ["list", "--json"],
                "list --status failed --json": ["list", "--status", "failed", "--json"]}
    env = {**os.environ, "DATABASE_URL": url}
    took: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, args in commands.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "publisher.ops.admin", *args], env=env, check=True,
                           capture_output=True)
            took[name].append(time.perf_counter() - start)
    return {name: {"p50": round(percentile(s, 50), 3), "max": round(max(s), 3)} for name, s in took.items()}


def purge_day(url: str, days: int) -> dict:
    """Deletes the completed jobs and the events of the history's oldest day (older than days - 1
    days), as listener/maintenance.py does: BATCH rows a transaction until less is left."""
    older = timedelta(days=days - 1)
    conn = psycopg2.connect(url, cursor_factory=psycopg2.extras.RealDictCursor)
    out = {}
    try:
        for what in ("completed_jobs", "job_events"):
            batches, deleted, start = [], 0, time.perf_counter()
            while True:
                began = time.perf_counter()
                with conn, conn.cursor() as cur:
                    n = maintenance.purge_rows(cur, what, older, BATCH)
                batches.append(time.perf_counter() - began)
                deleted += n
                if n < BATCH:
                    break
            out[what] = {"deleted": deleted, "seconds": round(time.perf_counter() - start, 2),
                         "batches": len(batches), "longest_batch_seconds": round(max(batches), 3)}
    finally:
        conn.close()
    return out


def _one(url: str, statement: str) -> tuple:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchone()
    finally:
        conn.close()


def _summary(ms: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(ms, 50), 1), "p95": round(percentile(ms, 95), 1), "max": round(max(ms), 1)}

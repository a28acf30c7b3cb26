"""Every hot path of the job store, run once as the listener, the workers, the console and
maintenance run it, on whatever a database holds (issue 26): a fresh lot inserted, claimed, taken
through its three steps and finalized, then rescue, re-announce, the outbox, the overview, the job
list, `status` and the purges. Each path's statements are planned by auto_explain (the statements
inside the SQL functions included) and timed.

Used by tests/sql/test_query_plans.py on a scaled-down history and by the bench's `history` part
on a year-sized one (devstack/history.py).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from datetime import timedelta

import psycopg2
import psycopg2.extras

from publisher.jobs.store import actions, broker_queue, finalize, intake, maintenance, outbox, overview, steps
from publisher.jobs.store.filters import JobFilter
from publisher.ops.overview import CURRENT_STATUSES

ALIVE, LEASE, HANDOFF, LIMIT = timedelta(seconds=30), timedelta(seconds=60), timedelta(minutes=15), timedelta(hours=1)
#: The tables whose size grows with the history.
BIG_TABLES = frozenset({"publish_jobs", "publish_job_events", "auction_files"})


@dataclasses.dataclass
class Path:
    plans: list[dict]
    seconds: float

    def sequential_scans(self, tables=BIG_TABLES) -> set[tuple[str, str]]:
        """(statement, table) of each sequential scan of one of tables."""
        return {(p["Query Text"].strip()[:160], table) for p in self.plans for table in _seq_scans(p["Plan"]) & tables}


def run(url: str, host: str = "hot-paths-host", explain: bool = True) -> dict[str, Path]:
    """One fresh lot through every hot path: {path: Path}. What the lot's steps write is committed (the
    next path needs it); every other path's transaction is rolled back."""
    conn = psycopg2.connect(url)
    conn.notices = []
    cur = conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor)
    if explain:
        cur.execute("LOAD 'auto_explain'")
        for setting, value in (("log_min_duration", "0"), ("log_level", "notice"), ("log_nested_statements", "on"),
                               ("log_format", "json")):
            cur.execute(f"SET auto_explain.{setting} = {value}")
        conn.commit()
    paths: dict[str, Path] = {}

    def path(name: str, call: Callable, keep: bool = False):
        del conn.notices[:]
        start = time.perf_counter()
        result = call(cur)
        conn.commit() if keep else conn.rollback()
        paths[name] = Path([json.loads(n.split("plan:", 1)[1]) for n in conn.notices if "plan:" in n],
                           time.perf_counter() - start)
        return result

    try:
        file_id = path("intake: a new file", lambda c: _one(c, "INSERT INTO auction_files (raid_key) "
                                                              "VALUES ('fresh.jpg') RETURNING id::text AS id")["id"],
                       keep=True)
        job_id = path("intake: the INSERT", lambda c: _one(c, "INSERT INTO publish_jobs (file_id) VALUES (%s) "
                                                              "RETURNING id", file_id)["id"], keep=True)
        path("worker beat", lambda c: steps.worker_beat(c, f"{host}:1:1", host, f"publish-host-{host}", 3), keep=True)
        claimed = path("claim", lambda c: intake.claim_pending(c, 10, 2, ALIVE), keep=True)
        token = next(j.token for j in claimed if j.job_id == job_id)
        path("begin fetch", lambda c: steps.begin_step(c, job_id, token, "fetch", LEASE, host, LIMIT), keep=True)
        for stage, following in (("fetch", "variant"), ("variant", "upload")):
            path("heartbeat", lambda c: steps.heartbeat(c, [(job_id, token)], LEASE))
            path("load job", lambda c: steps.load_job(c, job_id, token))
            path("current attempts", lambda c: steps.current_attempts(c, [(job_id, token)], host))
            path(f"pass {stage}", lambda c, s=stage, f=following: steps.pass_step(c, job_id, token, s, f, {}, LEASE,
                                                                                  LIMIT), keep=True)
        path("hand back upload", lambda c: steps.hand_back_step(c, job_id, token, "upload"))
        path("raid key", lambda c: steps.raid_key(c, job_id))
        path("record failure", lambda c: steps.record_failure(c, job_id, token, "boom", False, "test"))
        path("finalize", lambda c: finalize.finalize(c, job_id, token, {}, 400, 300, recipe="r"), keep=True)
        path("rescue", lambda c: intake.rescue(c, 100, ALIVE, HANDOFF))
        path("reannounce", lambda c: broker_queue.orphan_candidates(c, min_age=HANDOFF, alive=ALIVE,
                                                                     host_queue_prefix="publish-host-", batch=100))
        path("outbox: take", lambda c: outbox.take(c, 10, timedelta(seconds=30)))
        path("outbox: backlog", lambda c: outbox.backlog(c))
        path("status", lambda c: overview.status_snapshot(c))
        path("overview: job counts", lambda c: overview.job_counts(c, CURRENT_STATUSES))
        path("overview: completed today", lambda c: overview.completed_since(c, timedelta(days=1)))
        path("overview: oldest pending", lambda c: overview.oldest_pending(c))
        path("overview: last hour", lambda c: overview.last_hour_per_minute(c))
        path("charts: last day", lambda c: overview.last_day_per_minute(c))
        path("overview: failures by reason", lambda c: overview.failures_by_reason(c))
        path("overview: hosts", lambda c: overview.hosts(c))
        path("overview: latest publishes", lambda c: overview.latest_publishes(c, 20))
        path("overview: published files", lambda c: overview.published_files(c, 20))
        path("jobs: failed", lambda c: overview.list_jobs(c, JobFilter(status="failed"), limit=50))
        path("jobs: by reason", lambda c: overview.list_jobs(c, JobFilter(reason="origin_404"), limit=50))
        path("jobs: one", lambda c: overview.show_job(c, job_id))
        path("jobs: by file", lambda c: overview.list_jobs(c, JobFilter(file_id=file_id), limit=50))
        path("jobs: by key prefix", lambda c: overview.list_jobs(c, JobFilter(key_prefix="history/lot-12"), limit=50))
        path("overview: lanes", lambda c: (overview.pending_by_lane(c), overview.completed_since(c, LIMIT)))
        path("retry failed: preview", lambda c: actions.failures_to_retry(c, "origin_404"))
        for bulk in actions.Bulk:
            path(f"bulk {bulk}: preview of a key prefix",
                 lambda c, b=bulk: actions.bulk_preview(c, b, JobFilter(key_prefix="history/lot-12")))
            path(f"bulk {bulk}: preview of a reason",
                 lambda c, b=bulk: actions.bulk_preview(c, b, JobFilter(reason="origin_404")))
        for what in maintenance.ROW_PURGES:
            path(f"purge {what}", lambda c, w=what: maintenance.purge_rows(c, w, timedelta(days=30), 1000))
        path("purge: files", lambda c: maintenance.files_to_purge(c, timedelta(days=30), 100))
        path("purge: objects", lambda c: maintenance.take_unpublished_objects(c, timedelta(days=7), 100))
        path("forget lost hosts", lambda c: maintenance.forget_lost_hosts(c, timedelta(days=1)))
    finally:
        conn.close()
    return paths


#: The paths that must never read a big table whole: every one above but the lot's own insert of its
#: file, the worker's beat and the hosts' upkeep, which touch no big table.
HOT_PATHS = (
    "intake: the INSERT", "claim", "begin fetch", "pass fetch", "pass variant",
    "hand back upload", "heartbeat", "load job", "current attempts", "raid key", "record failure",
    "finalize", "rescue", "reannounce", "outbox: take", "status", "overview: job counts", "overview: oldest pending",
    "overview: last hour", "charts: last day", "overview: failures by reason", "overview: hosts",
    "overview: latest publishes", "overview: published files", "overview: lanes", "jobs: failed", "jobs: by reason",
    "jobs: one", "jobs: by file", "jobs: by key prefix", "retry failed: preview",
    *(f"purge {what}" for what in maintenance.ROW_PURGES), "purge: files", "purge: objects",
)


def _one(cur, statement: str, *params):
    cur.execute(statement, params)
    return cur.fetchone()


def _seq_scans(plan: dict) -> set[str]:
    return {table for kind, table in scans(plan) if kind == "Seq Scan"}


def scans(plan: dict) -> set[tuple[str, str]]:
    """(node type, table) of every scan in the plan."""
    found = {(plan["Node Type"], plan["Relation Name"])} if "Relation Name" in plan else set()
    for child in plan.get("Plans", []):
        found |= scans(child)
    return found

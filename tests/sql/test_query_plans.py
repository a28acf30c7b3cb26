"""The hot queries at a year's size (issue 26): on a history loaded by devstack/history.py (scaled
down so that make test stays fast), no statement that a hot path runs reads publish_jobs,
publish_job_events or auction_files by a sequential scan (devstack/hot_paths.py runs each path as the listener, the
workers, the console and maintenance do, and auto_explain plans every statement, those inside the
SQL functions included). The bench's `history` part checks the same at 2 million jobs."""

from __future__ import annotations

import psycopg2
import pytest

from devstack import history, hot_paths
from devstack.postgres import query
from publisher.jobs.store import overview

#: The history, scaled down: enough rows that the planner scans the table where no index serves (as
#: it does at millions), few enough to load in about a second.
HISTORY = {"jobs": 60_000, "files": 15_000}


@pytest.fixture(scope="module")
def history_url(pg_server):
    url = pg_server.create_database()
    pg_server.apply_sql(url)
    history.fill(url, **HISTORY)
    yield url
    pg_server.drop_database(url)


@pytest.fixture(scope="module")
def paths(history_url):
    return hot_paths.run(history_url)


def test_the_history_is_a_year_like_mix(pg_server):
    url = pg_server.create_database()
    try:
        pg_server.apply_sql(url)
        history.fill(url, jobs=20_000, files=5_000)
        counts = {r["status"]: r["n"] for r in query(url, "SELECT status, count(*)::int AS n "
                                                                    "FROM publish_jobs GROUP BY status")}
        assert sum(counts.values()) == 20_000 and counts["completed"] > 0.9 * 20_000
        assert counts["failed"] > 0 and counts["cancelled"] > 0
        assert query(url, "SELECT count(*)::int AS n FROM publish_job_events")[0]["n"] == 4 * 20_000
        ages = query(url, "SELECT extract(day FROM now() - min(created_at))::int AS oldest, "
                                    "count(DISTINCT failure_reason)::int AS reasons FROM publish_jobs")[0]
        assert ages == {"oldest": 89, "reasons": len(history.REASONS)}
    finally:
        pg_server.drop_database(url)


@pytest.mark.parametrize("name", hot_paths.HOT_PATHS)
def test_no_hot_path_reads_the_big_tables_by_a_sequential_scan(paths, name):
    assert paths[name].plans, f"{name}: no statement was planned (auto_explain saw nothing)"
    assert paths[name].sequential_scans() == set()



@pytest.mark.parametrize("statement", [overview.SOME_STATUS_COUNTS % "ARRAY['pending', 'failed', 'cancelled']",
                                       overview.COMPLETED_SINCE % "interval '1 day'",
                                       overview.FAILURES_BY_REASON],
                         ids=["counts by status", "completed today", "failures by reason"])
def test_the_overviews_counts_can_be_read_from_an_index_alone(history_url, statement):
    # Counted every few seconds by every open console: at a year's size, reading a job row per job
    # counted is what made the overview slow. At 60,000 jobs the rows are few and near each other, so
    # the planner is told what millions cost: a row read is a random read, a sequential scan is out.
    # A count must then be read from an index alone (a reason's latest example, one row per reason,
    # is read from its row, outside the count).
    conn = psycopg2.connect(history_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SET random_page_cost = 100; SET enable_bitmapscan = off; SET enable_seqscan = off")
            cur.execute("EXPLAIN (FORMAT JSON) " + statement.replace("%%", "%"))
            plan = cur.fetchone()[0][0]["Plan"]
    finally:
        conn.close()
    assert counted_by(plan) == {"Index Only Scan"}


def counted_by(plan: dict) -> set[str]:
    """How the rows an aggregate counts are read from publish_jobs."""
    if plan["Node Type"] == "Aggregate":
        return {kind for kind, table in hot_paths.scans(plan) if table == "publish_jobs"}
    return set().union(*(counted_by(child) for child in plan.get("Plans", [])))


@pytest.mark.parametrize("statistics", ["analyzed", "not yet analyzed"])
def test_a_claim_behind_a_catalogue_backlog_reads_the_head_of_the_lanes_not_the_backlog(pg_server, statistics):
    # A year of history (fresh jobs, nearly all) and a republish of the catalogue: the claim must find a
    # fresh lot at the head of its lane, not filter its way through every pending backlog job. Also
    # before an ANALYZE has seen the republish: autovacuum analyzes a table once a tenth of it has
    # changed, so a planner may go on believing that almost no job is pending for a long while.
    url = pg_server.create_database()
    try:
        pg_server.apply_sql(url)
        history.fill(url, **HISTORY)
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            if statistics == "not yet analyzed":  # nor by autovacuum, wherever it runs
                cur.execute("ALTER TABLE publish_jobs SET (autovacuum_enabled = false)")
            cur.execute("SELECT publisher_request_republish('new-recipe', 10000)")
            cur.execute("SELECT publisher_worker_beat('host-a:1:1', 'host-a', 'publish-host-host-a', 3)")
            cur.execute("INSERT INTO auction_files (raid_key) VALUES ('fresh.jpg') RETURNING id")
            cur.execute("INSERT INTO publish_jobs (file_id) VALUES (%s) RETURNING id", (cur.fetchone()[0],))
            fresh = cur.fetchone()[0]
        if statistics == "analyzed":
            with psycopg2.connect(url) as conn, conn.cursor() as cur:
                cur.execute("ANALYZE publish_jobs")
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            for call in range(8):  # a session's first plans and the generic one it settles on
                before = rows_fetched(cur)
                cur.execute("SELECT job_id FROM publisher_claim_pending(100, 2, interval '1 minute')")
                assert fresh in [r[0] for r in cur.fetchall()]
                fetched = rows_fetched(cur) - before
                conn.rollback()
                assert fetched < 100, f"claim {call + 1} fetched {fetched} rows of publish_jobs"
            # Whether jobs wait (the listener's refill) reads the heads of the lanes it may claim too:
            # with the backlog's lane paused and the fresh lot claimed, none of the backlog.
            cur.execute("SELECT publisher_admin_pause_lane(2::smallint)")
            cur.execute("SELECT job_id FROM publisher_claim_pending(100, 2, interval '1 minute')")
            for call in range(8):
                before = rows_fetched(cur)
                cur.execute("SELECT publisher_pending_waits()")
                assert cur.fetchone()[0] is False
                fetched = rows_fetched(cur) - before
                assert fetched < 100, f"pending_waits {call + 1} fetched {fetched} rows of publish_jobs"
    finally:
        pg_server.drop_database(url)


def rows_fetched(cur) -> int:
    """Rows of publish_jobs this session has read, by index or by scan (its counts not yet reported)."""
    cur.execute("SELECT idx_tup_fetch + seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = 'publish_jobs'")
    return cur.fetchone()[0]

"""What PostgreSQL parses and plans again for every job (issue 26, intake cost): a SQL-language
function that the planner cannot inline (a subquery, a FROM of its own, a set in a select list) is
parsed and planned at each call, where a PL/pgSQL function keeps its plans for the session. Once a
session is warm, a job's life, from the application's INSERT to the completion event, calls none."""

from __future__ import annotations

import json

from tests.support.job_sql import LEASE, TIME_LIMIT, begin, claimed_job, one, rows

#: Jobs a session runs before it counts: PostgreSQL plans a statement of a PL/pgSQL function for
#: its first five calls with their values (evaluating an immutable SQL function of constants
#: meanwhile), and only then keeps a generic plan.
WARM_UP_JOBS = 6
COUNTED_JOBS = 3


def _publish_one(cur) -> None:
    """One job's life as the application, the listener and a worker's steps run it."""
    job, token = claimed_job(cur)  # the INSERT (its defaults and triggers), a worker's beat, the claim
    assert begin(cur, job, token, "fetch") == "run"
    for stage, following in (("fetch", "variant"), ("variant", "upload")):
        assert one(cur, "SELECT publisher_pass_step(%s, %s, %s, %s, '{}', %s, %s)",
                   job, token, stage, following, LEASE, TIME_LIMIT) == "run"
    key = f"media/{one(cur, 'SELECT file_id::text FROM publish_jobs WHERE id = %s', job)}/thumb.webp"
    one(cur, "SELECT publisher_track_object(%s, %s, %s)", job, token, key)
    variants = json.dumps({"thumb": {"key": key, "width": 400, "height": 300}})
    assert one(cur, "SELECT publisher_finalize(%s, %s, %s, 10, 10)", job, token, variants) == "completed"
    cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the completion event's trigger runs now, not at COMMIT
    cur.execute("SET CONSTRAINTS ALL DEFERRED")


def _sql_function_calls(cur) -> dict[str, int]:
    """This transaction's calls of SQL-language functions that were not inlined, by name."""
    return {r["proname"]: r["calls"] for r in rows(
        cur, "SELECT p.proname, s.calls FROM pg_stat_xact_user_functions s JOIN pg_proc p ON p.oid = s.funcid "
             "JOIN pg_language l ON l.oid = p.prolang WHERE l.lanname = 'sql'")}


def test_a_warm_session_plans_no_sql_function_again_for_each_job(cur):
    cur.execute("BEGIN")
    cur.execute("SET LOCAL track_functions = 'all'")  # counts every call of a function not inlined
    for _ in range(WARM_UP_JOBS):
        _publish_one(cur)
    warm = _sql_function_calls(cur)
    for _ in range(COUNTED_JOBS):
        _publish_one(cur)
    counted = _sql_function_calls(cur)
    cur.execute("COMMIT")
    assert {name: calls - warm.get(name, 0) for name, calls in counted.items() if calls > warm.get(name, 0)} == {}

"""Who may call which SQL function, and what the destructive ones do whoever
calls them. The table in docs/operations.md (Roles) is the specification: every
publisher_* function is called as every role and the answer (refused for lack of
privilege, or not) must be the one the table gives; every table right likewise."""

import uuid
from pathlib import Path

import psycopg2
import psycopg2.errors
import pytest

from tests.support.job_sql import cursor, one, rows

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
ROLES = ("publisher_worker", "publisher_listener", "publisher_maintenance", "publisher_oncall", "publisher_readonly")
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")


def _doc_tables() -> tuple[dict, dict]:
    """(function -> roles that may call it, table -> {role: privileges}) as docs/operations.md states them."""
    letters = {"S": "SELECT", "I": "INSERT", "U": "UPDATE", "D": "DELETE"}
    functions, tables, current = {}, {}, None
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            current = None
        elif cells[0] in ("function", "table") and len(cells) == 1 + len(ROLES):
            assert tuple(f"publisher_{c}" for c in cells[1:]) == ROLES, cells
            current = functions if cells[0] == "function" else tables
        elif current is functions and cells[0].startswith("`"):
            functions[cells[0].strip("`")] = {role for role, cell in zip(ROLES, cells[1:]) if cell == "yes"}
        elif current is tables and cells[0].startswith("`"):
            tables[cells[0].strip("`")] = {role: {letters[x] for x in cell.split()}
                                           for role, cell in zip(ROLES, cells[1:])}
    return functions, tables


def _call(conn, role: str, signature: str) -> bool:
    """Calls the function with NULL arguments as the role, in a transaction rolled
    back after; whether PostgreSQL refused to run it for lack of privilege."""
    try:
        with conn.cursor() as cur:
            cur.execute(f"SET LOCAL ROLE {role}")
            cur.execute(f"SELECT * FROM {_with_nulls(signature)}")
        return False
    except psycopg2.errors.InsufficientPrivilege as e:
        # Refused the call itself; a table it reads with the caller's rights is another matter.
        return "permission denied for function" in str(e)
    except psycopg2.Error:
        return False  # it ran (and objected to its NULL arguments): not refused
    finally:
        conn.rollback()


def _with_nulls(signature: str) -> str:
    name, args = signature.split("(", 1)
    types = [t.strip() for t in args.rstrip(")").split(",") if t.strip()]
    return f"{name}({', '.join(f'NULL::{t}' for t in types)})"


def test_every_function_answers_every_role_as_the_operations_doc_says(schema_db):
    conn, url = schema_db
    functions, _ = _doc_tables()
    cur = cursor(conn)
    ours = rows(cur, """
        SELECT p.oid::regprocedure::text AS signature, p.proname AS name
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public' AND p.proname LIKE 'publisher\\_%%' ORDER BY 1""")
    assert {f["name"] for f in ours} == set(functions), "every publisher_* function is in the table, and no other"
    caller = psycopg2.connect(url)
    try:
        wrong = [(f["signature"], role) for f in ours for role in ROLES
                 if _call(caller, role, f["signature"]) == (role in functions[f["name"]])]
    finally:
        caller.close()
    assert wrong == []


def test_every_table_right_of_every_role_is_the_one_the_operations_doc_gives(schema_db):
    conn, _ = schema_db
    _, tables = _doc_tables()
    assert {"publish_jobs", "auction_files", "publisher_settings", "dramatiq.queue"} <= set(tables)
    cur = cursor(conn)
    ours = [r["name"] for r in rows(cur, """
        SELECT CASE WHEN schemaname = 'public' THEN tablename ELSE schemaname || '.' || tablename END AS name
          FROM pg_tables WHERE schemaname IN ('public', 'dramatiq')""")]
    assert set(ours) == set(tables)
    wrong = [(t, role, p) for t in ours for role in ROLES for p in PRIVILEGES
             if one(cur, "SELECT has_table_privilege(%s, %s, %s)", role, t, p) != (p in tables[t][role])]
    assert wrong == []


def test_the_worker_role_changes_jobs_files_and_settings_only_through_the_state_functions(schema_db):
    conn, _ = schema_db
    cur = cursor(conn)
    for table in ("publish_jobs", "auction_files", "publisher_settings", "publisher_workers"):
        for privilege in ("INSERT", "UPDATE", "DELETE", "TRUNCATE"):
            assert not one(cur, "SELECT has_table_privilege('publisher_worker', %s, %s)", table, privilege), \
                (table, privilege)


# -- destructive functions: whoever calls them, with whatever arguments ---------------------

HOSTILE_INTERVALS = ("-100 years", "0", "-1 second", "1 microsecond", None)


def _live_world(cur) -> dict:
    """Rows that no maintenance may remove: a published file and its just-completed
    job, a file soft-deleted a minute ago, recent history, a delivered event, a live host."""
    published = one(cur, "INSERT INTO auction_files (raid_key, publish_status, variants, published_at) "
                         "VALUES ('live.jpg', 'published', '{}', now()) RETURNING id::text")
    job = one(cur, "INSERT INTO publish_jobs (file_id) VALUES (%s) RETURNING id", published)
    one(cur, "UPDATE publish_jobs SET status = 'completed', completed_at = now() - interval '1 minute' "
             "WHERE id = %s", job)
    # Its first publication's object was superseded a moment ago: CDN caches may still ask for it.
    for name in ("first", "current"):
        key = f"media/{published}/thumb-{name}.webp"
        one(cur, "UPDATE auction_files SET variants = %s WHERE id = %s RETURNING 1",
            f'{{"thumb": {{"key": "{key}", "formats": {{"webp": {{"key": "{key}"}}}}}}}}', published)
    just_deleted = one(cur, "INSERT INTO auction_files (raid_key, deleted_at) "
                            "VALUES ('gone.jpg', now() - interval '1 minute') RETURNING id::text")
    running = one(cur, "INSERT INTO auction_files (raid_key, deleted_at) "
                       "VALUES ('old-but-busy.jpg', now() - interval '400 days') RETURNING id::text")
    one(cur, "INSERT INTO publish_jobs (file_id) VALUES (%s) RETURNING id", running)
    one(cur, "INSERT INTO publish_event_outbox (event_id, payload, delivered_at) "
             "VALUES (gen_random_uuid(), '{}', now() - interval '1 minute') RETURNING id")
    one(cur, "SELECT publisher_worker_beat('live:1:1', 'live', 'publish-host-live', 2)")
    # A live host's backlog: a step that has waited its turn for ten minutes.
    one(cur, "INSERT INTO dramatiq.queue (message_id, queue_name, state, mtime) "
             "VALUES (gen_random_uuid(), 'publish-host-live', 'queued', now() - interval '10 minutes') "
             "RETURNING message_id")
    # And its retry, delayed: Dramatiq keeps it in the queue's delay queue ('<queue>.DQ').
    one(cur, "INSERT INTO dramatiq.queue (message_id, queue_name, state, mtime) "
             "VALUES (gen_random_uuid(), 'publish-host-live.DQ', 'queued', now() - interval '10 minutes') "
             "RETURNING message_id")
    one(cur, "INSERT INTO dramatiq.queue (message_id, queue_name, state) "
             "VALUES (gen_random_uuid(), 'default', 'done') RETURNING message_id")
    return {"files": [published, just_deleted, running]}


def _count(cur) -> dict:
    return {t: one(cur, f"SELECT count(*) FROM {t}") for t in (
        "auction_files", "publish_jobs", "publish_job_events", "publish_event_outbox", "publisher_workers",
        "dramatiq.queue", "publisher_objects")}


def _destructive_calls(files):
    for interval in HOSTILE_INTERVALS:
        for file_id in files:
            yield "SELECT publisher_delete_file(%s)", (file_id,)
            yield "SELECT publisher_delete_file(%s, %s)", (file_id, interval)
            yield "SELECT * FROM publisher_lock_file_for_purge(%s, %s)", (file_id, interval)
        yield "SELECT publisher_purge_completed_jobs(%s, 1000)", (interval,)
        yield "SELECT publisher_purge_broker_messages(%s, 1000)", (interval,)
        yield "SELECT publisher_purge_job_events(%s, 1000)", (interval,)
        yield "SELECT publisher_purge_event_outbox(%s, 1000)", (interval,)
        yield "SELECT publisher_forget_lost_hosts(%s)", (interval,)
        yield "SELECT * FROM publisher_take_unpublished_objects(%s, 1000)", (interval,)


@pytest.mark.parametrize("role", ("postgres",) + ROLES)
def test_destructive_functions_spare_every_live_row_whatever_the_role_and_arguments(schema_db, role):
    conn, url = schema_db
    cur = cursor(conn)
    world = _live_world(cur)
    before = _count(cur)
    caller = psycopg2.connect(url)
    try:
        for statement, params in _destructive_calls(world["files"]):
            try:
                with caller.cursor() as c:
                    if role != "postgres":
                        c.execute(f"SET ROLE {role}")
                    c.execute(statement, params)
                caller.commit()
            except (psycopg2.errors.InsufficientPrivilege, psycopg2.errors.UndefinedFunction):
                caller.rollback()  # refused, or a function this schema does not have
    finally:
        caller.close()
    assert _count(cur) == before
    assert one(cur, "SELECT count(*) FROM auction_files WHERE id = ANY(%s::uuid[])", world["files"]) == 3


def test_a_file_past_its_retention_with_no_active_job_is_deleted_and_one_within_it_is_refused(schema_db):
    conn, _ = schema_db
    cur = cursor(conn)
    old = one(cur, "INSERT INTO auction_files (raid_key, deleted_at) VALUES ('old.jpg', now() - interval '40 days') "
                   "RETURNING id::text")
    one(cur, "INSERT INTO publish_jobs (file_id, status) VALUES (%s, 'failed') RETURNING id", old)
    recent = one(cur, "INSERT INTO auction_files (raid_key, deleted_at) VALUES ('new.jpg', now() - interval '2 days') "
                      "RETURNING id::text")
    assert one(cur, "SELECT publisher_delete_file(%s, '30 days')", recent) == 0
    assert one(cur, "SELECT publisher_delete_file(%s, '30 days')", old) == 1
    assert one(cur, "SELECT count(*) FROM auction_files WHERE id = ANY(%s::uuid[])", [old, recent]) == 1
    assert one(cur, "SELECT count(*) FROM publish_jobs WHERE file_id = %s", old) == 0


# -- search path -------------------------------------------------------------------------

def test_every_security_definer_function_searches_pg_catalog_first_and_no_schema_others_can_write(schema_db):
    conn, _ = schema_db
    cur = cursor(conn)
    definers = rows(cur, """
        SELECT p.oid::regprocedure::text AS f, p.proconfig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE p.prosecdef AND n.nspname IN ('public', 'dramatiq')""")
    assert definers
    for d in definers:
        path = [s.strip() for s in dict(c.split("=", 1) for c in d["proconfig"] or [])
                .get("search_path", "").split(",")]
        assert path[0] == "pg_catalog", d
        assert "pg_temp" not in path[:-1], d  # pg_temp, if named, last: otherwise searched first for tables
        for schema in path:
            if schema in ("pg_catalog", "pg_temp"):
                continue
            assert not one(cur, "SELECT has_schema_privilege('public', %s, 'CREATE')", schema), (d, schema)
            for role in ROLES:
                assert not one(cur, "SELECT has_schema_privilege(%s, %s, 'CREATE')", role, schema), (d, schema, role)


def test_an_oncall_shadow_of_format_never_runs_with_the_owners_rights(pg_server):
    """A database where PUBLIC may CREATE in public (PostgreSQL up to 14, and any
    database upgraded from one): the on-call role tries to plant public.format(text,
    bigint), which would match the operator functions' format(..., job id) better
    than pg_catalog's variadic one."""
    url = pg_server.create_database()
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        conn.cursor().execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
        pg_server.apply_sql(url)
        cur = cursor(conn)
        file_id = one(cur, "INSERT INTO auction_files (raid_key) VALUES ('a.jpg') RETURNING id::text")
        job = one(cur, "INSERT INTO publish_jobs (file_id) VALUES (%s) RETURNING id", file_id)
        oncall = psycopg2.connect(url)
        try:
            with oncall.cursor() as c:
                c.execute("SET ROLE publisher_oncall")
                c.execute("""CREATE FUNCTION public.format(text, bigint) RETURNS text LANGUAGE sql AS $$
                                 UPDATE publish_jobs SET max_retries = 999 RETURNING 'hijacked'::text $$""")
            oncall.commit()
        except psycopg2.errors.InsufficientPrivilege:
            oncall.rollback()
        try:
            with oncall.cursor() as c:
                c.execute("SET ROLE publisher_oncall")
                c.execute("SELECT message FROM publisher_admin_cancel(%s)", (job,))
                message = c.fetchone()[0]
            oncall.commit()
        finally:
            oncall.close()
        assert "hijacked" not in message
        assert one(cur, "SELECT max_retries FROM publish_jobs WHERE id = %s", job) != 999
        assert one(cur, "SELECT status FROM publish_jobs WHERE id = %s", job) == "cancelled"
        assert not one(cur, "SELECT has_schema_privilege('publisher_oncall', 'public', 'CREATE')")
    finally:
        conn.close()
        pg_server.drop_database(url)


def test_no_role_may_run_a_security_definer_function_before_the_roles_file_grants_it(pg_server, tmp_path):
    """Every file applies in its own psql run: a deploy that stops before 900_roles.sql
    (a file failed, the migrate was killed) must leave no function of ours open to PUBLIC."""
    sql = Path(__file__).resolve().parents[2] / "sql"
    for path in sorted(sql.glob("*.sql")):
        if path.name < "900":
            (tmp_path / path.name).write_text(path.read_text())
    url = pg_server.create_database()
    low = f"publisher_test_low_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        pg_server.apply_sql(url, tmp_path)
        cur = cursor(conn)
        cur.execute(f"CREATE ROLE {low} NOLOGIN")
        definers = [r["f"] for r in rows(cur, """
            SELECT p.oid::regprocedure::text AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE p.prosecdef AND n.nspname = 'public' AND p.prorettype <> 'trigger'::regtype ORDER BY 1""")]
        assert "publisher_take_unpublished_objects(interval,integer)" in definers
        caller = psycopg2.connect(url)
        try:
            assert [f for f in definers if not _call(caller, low, f)] == []
            # What every writer of publish_jobs evaluates (the column default) stays open.
            assert _call(caller, low, "publisher_default_max_retries()") is False
        finally:
            caller.close()
    finally:
        conn.cursor().execute(f"DROP ROLE IF EXISTS {low}")
        conn.close()
        pg_server.drop_database(url)


def test_every_function_a_role_may_call_has_exactly_one_signature(cur):
    # The role table above grants by name: a second signature (an overload kept for
    # older callers) would be a second door to the same state change, unseen there.
    overloaded = rows(cur, """
        SELECT p.proname AS name, count(*) AS signatures
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public' AND p.proname LIKE 'publisher\\_%%'
           AND EXISTS (SELECT 1 FROM aclexplode(p.proacl) a JOIN pg_roles r ON r.oid = a.grantee
                        WHERE r.rolname = ANY(%s))
         GROUP BY p.proname HAVING count(*) > 1""", list(ROLES))
    assert overloaded == []

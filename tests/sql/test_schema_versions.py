"""sql/ on a real PostgreSQL: re-runnable, and the job state machine's rules."""

import psycopg2
import psycopg2.extras
import pytest

from tests.support.job_sql import (
    begin,
    claim,
    claimed_job,
    cursor,
    expire_lease,
    fail,
    file_of,
    finalize,
    job,
    new_job,
    rescue,
    rows,
    run_to_upload,
    worker_beat,
)


@pytest.fixture
def db(schema_db):
    return schema_db


def q(conn, sql, params=()):
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


def test_sql_can_be_applied_again_without_losing_data(db, pg_server):
    conn, url = db
    job = new_job(cursor(conn))
    q(conn, "UPDATE publish_jobs SET last_error = 'kept' WHERE id = %s", (job,))
    pg_server.apply_sql(url)
    pg_server.apply_sql(url)
    row = q(conn, "SELECT status, last_error FROM publish_jobs WHERE id = %s", (job,))[0]
    assert row == {"status": "pending", "last_error": "kept"}
    assert q(conn, "SELECT count(*) AS n FROM dramatiq.queue")[0]["n"] == 0


def test_insert_notifies_the_listener_channel(db):
    conn, _ = db
    q(conn, "LISTEN publish_jobs")
    job = new_job(cursor(conn))
    conn.poll()
    assert [n.payload for n in conn.notifies] == [str(job)]


def test_a_claimed_job_is_not_claimed_again(db):
    conn, _ = db
    cur = cursor(conn)
    worker_beat(cur)
    job_id = new_job(cur)
    assert [r["job_id"] for r in claim(cur)] == [job_id]
    assert claim(cur) == []


def test_a_stale_attempt_can_neither_run_nor_finalize(db):
    cur = cursor(db[0])
    job_id, old = claimed_job(cur)
    assert begin(cur, job_id, old, "fetch") == "run"
    # The lease runs out: the rescuer hands the job to a new attempt.
    expire_lease(cur, job_id)
    rescued = rescue(cur)
    assert [(r["job_id"], r["stage"]) for r in rescued] == [(job_id, "fetch")]
    new = rescued[0]["token"]
    assert new != old
    # The old worker wakes up: it may not start a step, nor finalize.
    assert begin(cur, job_id, old, "variant") == "stale"
    assert finalize(cur, job_id, old, {}) == "stale"
    row = job(cur, job_id)
    assert (row["status"], row["retry_count"]) == ("queued", 1)
    # The new attempt finalizes once; a duplicate delivery changes nothing.
    run_to_upload(cur, job_id, new)
    assert finalize(cur, job_id, new, {"thumb": {}}) == "completed"
    assert finalize(cur, job_id, new, {}) == "stale"
    file = file_of(cur, job_id)
    assert (file["publish_status"], file["variants"]) == ("published", {"thumb": {}})


def test_retries_are_counted_per_job_and_then_fail(db):
    cur = cursor(db[0])
    job_id, token = claimed_job(cur)
    cur.execute("UPDATE publish_jobs SET max_retries = 1 WHERE id = %s", (job_id,))
    outcomes = []
    for _ in range(2):
        begin(cur, job_id, token, "fetch")
        outcomes.append(fail(cur, job_id, token, "fetch: origin 503", False))
    assert outcomes == ["retry", "failed"]
    row = job(cur, job_id)
    assert (row["status"], row["retry_count"], row["max_retries"], row["last_error"]) == (
        "failed", 1, 1, "fetch: origin 503")
    # The replaced system's query for jobs that used up their retries finds it.
    assert rows(cur, "SELECT id FROM publish_jobs WHERE status = 'failed' AND retry_count >= max_retries") == [
        {"id": job_id}]


def test_raising_max_retries_runs_an_exhausted_job_again(db):
    conn, _ = db
    job = new_job(cursor(conn))
    q(conn, "UPDATE publish_jobs SET status = 'failed', retry_count = 5 WHERE id = %s", (job,))
    q(conn, "LISTEN publish_jobs")
    q(conn, "UPDATE publish_jobs SET max_retries = 10 WHERE status = 'failed'")
    row = q(conn, "SELECT status, retry_count FROM publish_jobs WHERE id = %s", (job,))[0]
    assert row == {"status": "pending", "retry_count": 5}
    conn.poll()
    assert [n.payload for n in conn.notifies] == [str(job)]


def test_setting_a_job_back_to_pending_starts_over(db):
    cur = cursor(db[0])
    job_id, token = claimed_job(cur)
    begin(cur, job_id, token, "fetch")
    fail(cur, job_id, token, "fetch: 404", True)
    cur.execute("UPDATE publish_jobs SET status = 'pending' WHERE id = %s", (job_id,))
    row = job(cur, job_id)
    assert (row["status"], row["retry_count"], row["attempt_token"], row["host_id"]) == ("pending", 0, None, None)
    assert file_of(cur, job_id)["publish_status"] == "pending"


def test_a_step_that_died_counts_as_an_attempt(db):
    cur = cursor(db[0])
    job_id, token = claimed_job(cur)
    cur.execute("UPDATE publish_jobs SET max_retries = 1 WHERE id = %s", (job_id,))
    assert begin(cur, job_id, token, "fetch") == "run"
    # A second delivery while the first holds a live lease is a duplicate.
    assert begin(cur, job_id, token, "fetch") == "busy"
    for expected in ("run", "failed"):  # the worker died each time: the lease ran out
        expire_lease(cur, job_id)
        assert begin(cur, job_id, token, "fetch") == expected
    row = job(cur, job_id)
    assert row["status"] == "failed" and "never finished" in row["last_error"]


def test_the_pip_installed_postgres_runs_the_schema(tmp_path):
    """The server `make test` and `make run` start on a machine without PostgreSQL."""
    from pathlib import Path

    from devstack import postgres

    server = postgres._start_embedded(Path(__file__).resolve().parents[2] / ".run" / "pg-schema-test")
    url = server.create_database()
    try:
        server.apply_sql(url)
        conn = psycopg2.connect(url)
        conn.autocommit = True
        q(conn, "LISTEN publish_jobs")
        job = new_job(cursor(conn))
        conn.poll()
        assert [n.payload for n in conn.notifies] == [str(job)]
        conn.close()
    finally:
        server.drop_database(url)
        server.stop()


# -- schema versions (publisher/ops/schema.py, publisher-admin schema / migrate) --
def test_schema_files_are_numbered_once_each():
    from publisher.ops.schema import SQL_DIR, schema_files

    files = schema_files()  # refuses a number used twice
    assert len(files) == len(list(SQL_DIR.glob("*.sql"))) > 5
    assert [f.version for f in files] == sorted({f.version for f in files})


def test_two_files_with_one_number_are_refused(tmp_path):
    from publisher.ops.schema import SchemaError, schema_files

    (tmp_path / "006_operations.sql").write_text("SELECT 1;")
    (tmp_path / "006_pg_cron.sql").write_text("SELECT 1;")
    with pytest.raises(SchemaError, match="share the number 006"):
        schema_files(tmp_path)


def admin(url, psql_dir, *args):
    import subprocess
    import sys

    from devstack import procs

    env = {"DATABASE_URL": url, "PATH": f"{psql_dir}:/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "publisher.ops.admin", *args], env=env, cwd=procs.ROOT,
                          capture_output=True, text=True, timeout=120)


def test_publisher_admin_shows_the_schema_version_and_the_pending_files(pg_server):
    from pathlib import Path

    from devstack.postgres import query
    from publisher.ops.schema import schema_files

    files = schema_files()
    psql_dir = Path(pg_server.psql).parent
    url = pg_server.create_database()
    try:
        before = admin(url, psql_dir, "schema")
        assert before.returncode == 1 and "schema version: none" in before.stdout
        assert [line for line in before.stdout.splitlines() if line.startswith("pending: ")] == \
            [f"pending: {f.name} (never applied)" for f in files]

        migrate = admin(url, psql_dir, "migrate")
        assert migrate.returncode == 0, migrate.stderr
        assert [line for line in migrate.stdout.splitlines() if line.startswith("applying ")] == \
            [f"applying {f.name}" for f in files]  # in number order
        after = admin(url, psql_dir, "schema")
        assert after.returncode == 0
        assert after.stdout.splitlines() == [f"schema version: {files[-1].version:03d}",
                                             f"up to date: {len(files)} files applied"]

        # A file edited since it was applied is pending again; migrating again applies it.
        query(url, "UPDATE publisher_schema_versions SET checksum = 'older' WHERE version = 2")
        edited = admin(url, psql_dir, "schema")
        assert edited.returncode == 1 and "pending: 002_job_states.sql (changed since applied" in edited.stdout
        assert admin(url, psql_dir, "migrate").returncode == 0
        assert admin(url, psql_dir, "schema").returncode == 0
    finally:
        pg_server.drop_database(url)

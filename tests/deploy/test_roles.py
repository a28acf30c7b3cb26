"""The roles of sql/900_roles.sql, each given to a login role of its own, as an
operator would (docs/operations.md, Roles): the workers run as publisher_worker,
the listener as publisher_listener and publisher_maintenance, publisher-admin
maintain as publisher_maintenance, every other publisher-admin command as
publisher_oncall, status and schema as publisher_readonly; and each is refused
what it must not do."""

import subprocess
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import psycopg2.errors
import pytest

from devstack import postgres, procs
from devstack.ports import wait_until

pytestmark = pytest.mark.e2e

#: Each login and the group roles it is in.
LOGINS = {"worker": ("publisher_worker",), "listener": ("publisher_listener", "publisher_maintenance"),
          "maintenance": ("publisher_maintenance",), "oncall": ("publisher_oncall",),
          "readonly": ("publisher_readonly",)}


@pytest.fixture
def logins(make_stack):
    """A stack (its schema applied, nothing running) and, per login of LOGINS, the
    DATABASE_URL of a new login role in those groups."""
    stack = make_stack(MAINTENANCE_INTERVAL=1, COMPLETED_JOB_RETENTION_DAYS=1,
                       STAGING_PREFIX=f"_staging-{uuid.uuid4().hex[:8]}/")
    suffix = uuid.uuid4().hex[:8]
    users = {login: f"media_{login}_{suffix}" for login in LOGINS}
    for login, user in users.items():
        postgres.query(stack.pg.admin_url, f'CREATE ROLE "{user}" LOGIN IN ROLE {", ".join(LOGINS[login])}')
    parts = urlsplit(stack.db_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    yield stack, {login: urlunsplit(parts._replace(netloc=f"{user}@{host}")) for login, user in users.items()}
    stack.stop()  # ends the sessions and drops the database, then the logins can go
    for user in users.values():
        postgres.query(stack.pg.admin_url, f'DROP ROLE IF EXISTS "{user}"')


def admin(stack, url, *args):
    env = {**stack.env, "DATABASE_URL": url}
    done = subprocess.run([sys.executable, "-m", "publisher.ops.admin", *map(str, args)], env=env, cwd=procs.ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def refused(url, statement, params=()):
    """Whether PostgreSQL refuses the statement for lack of privilege."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
        return False
    except psycopg2.errors.InsufficientPrivilege:
        return True
    finally:
        conn.close()


def may_execute(url, function: str) -> bool:
    """Whether the URL's role may run the function (any signature of that name)."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT bool_or(has_function_privilege(oid, 'EXECUTE')) FROM pg_proc WHERE proname = %s",
                        (function,))
            allowed = cur.fetchone()[0]
    finally:
        conn.close()
    assert allowed is not None, f"no function {function}"
    return allowed


def test_the_workers_run_as_publisher_worker_and_the_listener_as_listener_and_maintenance(logins):
    stack, urls = logins
    old = stack.publish("old.jpg")  # completed long ago: the listener's maintenance purges it
    stack.sql("UPDATE publish_jobs SET status = 'completed', completed_at = now() - interval '3 days' "
              "WHERE id = %s", (old,))
    stack.env["DATABASE_URL"] = urls["worker"]
    stack.start_workers(processes=1, threads=2)
    stack.env["DATABASE_URL"] = urls["listener"]
    stack.start_listener()

    job = stack.wait_for(stack.publish("progressive.jpg"))
    assert job["status"] == "completed", job["last_error"]
    wait_until(lambda: not stack.sql("SELECT 1 FROM publish_jobs WHERE id = %s", (old,)), 30,
               "the listener's maintenance to purge the old job")
    assert "permission denied" not in stack.logs()

    worker = urls["worker"]
    assert not may_execute(worker, "publisher_admin_cancel")
    assert not may_execute(worker, "publisher_delete_file") and not may_execute(worker, "publisher_claim_pending")
    assert refused(worker, "UPDATE publish_jobs SET status = 'completed' WHERE id = %s", (job["id"],))
    assert refused(worker, "UPDATE auction_files SET variants = '{}'")
    assert refused(worker, "INSERT INTO publisher_settings (name, value) VALUES ('max_retries', '0')")
    assert refused(worker, "DELETE FROM publish_jobs WHERE id = %s", (job["id"],))
    assert refused(worker, "TRUNCATE dramatiq.queue")
    assert refused(worker, "CREATE TABLE intruder (id int)")
    assert refused(worker, "ALTER TABLE publish_jobs ADD COLUMN intruder int")


def test_every_admin_command_runs_as_publisher_oncall(logins):
    stack, urls = logins
    oncall = urls["oncall"]
    completed, failed, pending = (stack.publish(key) for key in ("a.jpg", "b.jpg", "c.jpg"))
    stack.sql("UPDATE publish_jobs SET status = 'completed', completed_at = now() WHERE id = %s", (completed,))
    stack.sql("UPDATE publish_jobs SET status = 'failed', last_error = 'fetch: 404' WHERE id = %s", (failed,))
    cancelled_file = stack.job(pending)["file_id"]

    for command in (["status"], ["schema"], ["cancel", pending], ["retry", completed],
                    ["republish", cancelled_file], ["retry-failed", "--yes"]):
        code, out = admin(stack, oncall, *command)
        assert code == 0 and "changed: " in out if command[0] in ("cancel", "retry", "republish") else code == 0, \
            (command, out)
    assert stack.job(completed)["status"] == "pending" and stack.job(failed)["status"] == "pending"
    assert stack.job(pending)["status"] == "cancelled"
    republish = subprocess.run([sys.executable, "-m", "publisher.ops.republish", "--dry-run"], cwd=procs.ROOT,
                               env={**stack.env, "DATABASE_URL": oncall}, capture_output=True, text=True, timeout=60)
    assert republish.returncode == 0, republish.stdout + republish.stderr

    # Rows change only through the operator's functions; the schema not at all.
    assert refused(oncall, "UPDATE publish_jobs SET status = 'pending' WHERE id = %s", (pending,))
    assert refused(oncall, "DELETE FROM auction_files")
    assert refused(oncall, "INSERT INTO dramatiq.queue (message_id) VALUES (gen_random_uuid())")
    assert not may_execute(oncall, "publisher_claim_pending") and not may_execute(oncall, "publisher_finalize")
    code, out = admin(stack, oncall, "migrate")
    assert code == 2 and "permission denied" in out, out
    # Maintenance deletes: not the on-call's to run.
    code, out = admin(stack, oncall, "maintain", "--yes")
    assert code != 0 and "permission denied" in out, out
    assert not may_execute(oncall, "publisher_delete_file")


def test_publisher_admin_maintain_runs_as_publisher_maintenance_and_removes_only_what_is_due(logins):
    stack, urls = logins
    old, recent = stack.publish("old.jpg"), stack.publish("recent.jpg")
    stack.sql("UPDATE publish_jobs SET status = 'completed', completed_at = now() - interval '3 days' "
              "WHERE id = %s", (old,))
    stack.sql("UPDATE publish_jobs SET status = 'completed', completed_at = now() WHERE id = %s", (recent,))
    code, out = admin(stack, urls["maintenance"], "maintain", "--yes")
    assert code == 0 and "removed: 1 completed jobs" in out, out
    assert [r["id"] for r in stack.sql("SELECT id FROM publish_jobs")] == [recent]
    maintenance = urls["maintenance"]
    assert refused(maintenance, "DELETE FROM publish_jobs")
    assert refused(maintenance, "SELECT * FROM publish_jobs")
    assert not may_execute(maintenance, "publisher_admin_retry")


def test_publisher_readonly_reads_and_changes_nothing(logins):
    stack, urls = logins
    readonly = urls["readonly"]
    job = stack.publish("a.jpg")
    stack.sql("UPDATE publish_jobs SET status = 'failed', last_error = 'fetch: 404' WHERE id = %s", (job,))

    code, out = admin(stack, readonly, "status")
    assert code == 0 and "failed      1" in out and "fetch: 404" in out
    assert admin(stack, readonly, "schema")[0] == 0

    for command in (["retry", job], ["retry-failed", "--yes"], ["cancel", job], ["maintain", "--yes"]):
        code, out = admin(stack, readonly, *command)
        assert code != 0 and "permission denied" in out, (command, out)
    assert refused(readonly, "UPDATE publish_jobs SET max_retries = 10")
    assert refused(readonly, "INSERT INTO publisher_settings (name, value) VALUES ('max_retries', '1')")
    assert not may_execute(readonly, "publisher_purge_completed_jobs")
    assert not may_execute(readonly, "publisher_admin_retry")
    assert stack.job(job)["status"] == "failed"

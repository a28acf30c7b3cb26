"""No secret value (RAID token, B2 app key, database password) is written to
any log or last_error, even when an exception quotes it."""

from urllib.parse import urlsplit, urlunsplit

from devstack.origin import Fault
from tests.faults import harness
from tests.faults.harness import LEAK_MARK
from tests.support.stack import TOKEN

DB_PASSWORD = "db-pass-Zq81xw"  # the server trusts local connections, so any password works


def test_secrets_never_reach_logs_or_last_error(fault_stack, batch, origin):
    stack = fault_stack(LOG_LEVEL="debug")
    parts = urlsplit(stack.db_url)
    netloc = f"postgres:{DB_PASSWORD}@{parts.hostname}:{parts.port}"
    stack.env["DATABASE_URL"] = urlunsplit(parts._replace(netloc=netloc))
    secrets = {"RAID token": TOKEN, "B2 app key": stack.env["B2_APP_KEY"], "database password": DB_PASSWORD}

    jobs = batch(stack, "secrets")
    # A step fails with an exception quoting the database URL, an Authorization header and the S3 key pair.
    leaky = [jobs.add(jobs.source("progressive.jpg", LEAK_MARK + "-"), expect="failed", max_retries=1)
             for _ in range(2)]
    jobs.faults += 4
    # Errors of the origin (its token refused) and plain work, at debug level.
    refused = jobs.source("progressive.jpg", "401-")
    origin.faults[refused] = Fault(status=401)
    jobs.add(refused, expect="failed")
    jobs.faults += 1
    jobs.add(jobs.source("progressive.jpg"))
    harness.start_workers(stack, hooks=True)
    stack.start_listener()
    jobs.wait()
    # Every connection cut: the reconnect messages are logged too.
    harness.terminate_connections(stack)
    jobs.faults += 1
    late = batch(stack, "secrets-after-reconnect")
    late.add(late.source("progressive.jpg"))
    late.wait()
    result = jobs.outcome()
    result.assert_clean()
    late.outcome().assert_clean()

    rows = {r["id"]: r for r in result.rows}
    for job_id in leaky:
        # The provocation happened, and was redacted.
        assert "[redacted]" in rows[job_id]["last_error"], rows[job_id]
    harness.stop_all(stack)
    stack.listener.stop()
    written = {
        "logs": stack.logs(),
        "last_error": "\n".join(r["last_error"] or "" for r in stack.sql("SELECT last_error FROM publish_jobs")),
        "job events": "\n".join(r["last_error"] or "" for r in stack.sql("SELECT last_error FROM publish_job_events")),
        "broker messages": "\n".join(r["m"] for r in stack.sql("SELECT message::text AS m FROM dramatiq.queue")),
    }
    assert "could not reach postgresql://postgres:[redacted]@" in written["logs"]  # logged, redacted
    leaks = [f"{what} in {where}" for where, text in written.items() for what, value in secrets.items()
             if value in text]
    assert leaks == []

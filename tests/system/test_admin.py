"""`publisher-admin` against a real database (and, where it matters, real
workers): what the on-call person sees and what each action changes."""

import shutil
import subprocess
import sys

import pytest

from devstack import procs
from tests.conftest import CORPUS



def admin(stack, *args):
    env = {"PATH": str(procs.BIN) + ":/usr/bin:/bin", "DATABASE_URL": stack.db_url}
    done = subprocess.run([sys.executable, "-m", "publisher.ops.admin", *map(str, args)], env=env, cwd=procs.ROOT,
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def failed_job(stack, key, error):
    job = stack.publish(key)
    stack.sql("UPDATE publish_jobs SET status = 'failed', last_error = %s WHERE id = %s", (error, job))
    return job


def test_status_shows_depth_rates_oldest_pending_and_failures(make_stack):
    stack = make_stack()  # no listener: jobs stay where the test puts them
    pending = stack.publish("a.jpg")
    stack.publish("b.jpg")
    failed_job(stack, "c.jpg", "fetch: origin answered 404 Not Found for key 'c.jpg'")
    done = stack.publish("d.jpg")
    stack.sql("UPDATE publish_jobs SET status = 'completed', started_at = now() - interval '4 seconds', "
              "completed_at = now() WHERE id = %s", (done,))
    code, out = admin(stack, "status")
    assert code == 0, out
    assert "pending     2" in out and "failed      1" in out and "completed   1" in out
    assert "last hour: 1 completed" in out and "1 failed; error rate 50.0%" in out
    assert "average processing time (last hour): 4.0" in out
    assert f"oldest pending job: {pending} " in out
    assert "origin answered 404 Not Found for key 'c.jpg'" in out


def test_retry_runs_a_failed_job_again_and_it_publishes(make_stack, origin_root):
    stack = make_stack()
    stack.start_workers(processes=1, threads=2)
    stack.start_listener()
    job = stack.publish("arrives-late.jpg")  # not at the origin yet: 404, a permanent failure
    row = stack.wait_for(job)
    assert row["status"] == "failed" and "404" in row["last_error"]

    shutil.copy(CORPUS / "progressive.jpg", origin_root / "arrives-late.jpg")
    code, out = admin(stack, "retry-failed", "--reason", "404 not found")
    assert code == 0, out
    assert f"changed: job {job} " in out and "failed -> pending" in out and "1 failed job(s)" in out
    assert stack.wait_for(job)["status"] == "completed"
    assert stack.job(job)["publish_status"] == "published"


def test_retry_failed_by_reason_changes_only_matching_latest_jobs(make_stack):
    stack = make_stack()
    not_found = failed_job(stack, "a.jpg", "fetch: origin answered 404 Not Found")
    corrupt = failed_job(stack, "b.jpg", "variant: corrupt or truncated jpeg")
    deleted = failed_job(stack, "c.jpg", "fetch: origin answered 404 Not Found")
    stack.sql("UPDATE auction_files SET deleted_at = now() WHERE id = (SELECT file_id FROM publish_jobs "
              "WHERE id = %s)", (deleted,))
    code, out = admin(stack, "retry-failed", "--reason", "404")
    assert code == 0 and f"job {not_found} " in out and f"job {deleted} " not in out
    statuses = {r["id"]: r["status"] for r in stack.sql("SELECT id, status FROM publish_jobs")}
    assert statuses[not_found] == "pending" and statuses[corrupt] == "failed" and statuses[deleted] == "failed"
    assert stack.job(not_found)["retry_count"] == 0

    code, out = admin(stack, "retry-failed", "--reason", "nothing like this")
    assert code == 1 and "0 failed job(s) matching 'nothing like this'" in out


def test_retry_of_an_active_job_changes_nothing(make_stack):
    stack = make_stack()
    job = stack.publish("a.jpg")
    code, out = admin(stack, "retry", job)
    assert code == 1 and f"unchanged: job {job} is pending already" in out
    code, out = admin(stack, "retry", 999999)
    assert code == 1 and "no job 999999" in out


def test_republish_adds_a_job_unless_one_is_active(make_stack):
    stack = make_stack()
    job = stack.publish("a.jpg")
    file_id = stack.job(job)["file_id"]
    code, out = admin(stack, "republish", file_id)
    assert code == 1 and f"already has active job {job}" in out
    stack.sql("UPDATE publish_jobs SET status = 'completed', completed_at = now() WHERE id = %s", (job,))
    code, out = admin(stack, "republish", file_id)
    assert code == 0 and "new job" in out
    jobs = stack.sql("SELECT id, status FROM publish_jobs WHERE file_id = %s ORDER BY id", (file_id,))
    assert [r["status"] for r in jobs] == ["completed", "pending"]
    code, out = admin(stack, "republish", "not-a-uuid")
    assert code == 2 and "not a file id" in out


def test_cancel_a_pending_job_keeps_an_earlier_publication(make_stack):
    stack = make_stack()
    first = stack.publish("a.jpg")
    file_id = stack.job(first)["file_id"]
    stack.sql("UPDATE publish_jobs SET status = 'completed', completed_at = now() WHERE id = %s", (first,))
    stack.sql("UPDATE auction_files SET publish_status = 'published', published_at = now(), "
              "variants = '{\"thumb\": {}}' WHERE id = %s", (file_id,))
    again = stack.request_publish(file_id)
    code, out = admin(stack, "cancel", again)
    assert code == 0 and f"changed: job {again}: pending -> cancelled" in out
    row = stack.job(again)
    assert row["status"] == "cancelled" and row["last_error"] == "cancelled by an operator"
    assert row["publish_status"] == "published"  # the earlier variants are still on the CDN

    running = stack.publish("b.jpg")
    stack.sql("UPDATE publish_jobs SET status = 'processing', stage = 'variant', step_started_at = now() "
              "WHERE id = %s", (running,))
    code, out = admin(stack, "cancel", running)
    assert code == 1 and "running its variant step; not cancelled" in out
    assert stack.job(running)["status"] == "processing"


def test_a_cancelled_job_is_never_run_again_by_retry_failed(make_stack):
    stack = make_stack()
    cancelled = stack.publish("cancelled.jpg")
    assert admin(stack, "cancel", cancelled)[0] == 0
    failed = failed_job(stack, "failed.jpg", "fetch: origin answered 404 Not Found")
    code, out = admin(stack, "retry-failed")
    assert code == 0 and f"job {failed} " in out and f"job {cancelled} " not in out
    assert stack.job(cancelled)["status"] == "cancelled"
    assert stack.job(failed)["status"] == "pending"
    code, out = admin(stack, "status")
    assert "cancelled   1" in out
    # An operator may still run one cancelled job again, by its id.
    code, out = admin(stack, "retry", cancelled)
    assert code == 0 and stack.job(cancelled)["status"] == "pending"


def test_retry_failed_reason_is_a_literal_text_not_a_pattern(make_stack):
    stack = make_stack()
    full = failed_job(stack, "full.jpg", "upload: disk 95% full on volume a_1")
    other = failed_job(stack, "other.jpg", "upload: disk 95 percent full on volume ab1")
    code, out = admin(stack, "retry-failed", "--reason", "95%")
    assert code == 0 and f"job {full} " in out and f"job {other} " not in out
    assert stack.job(other)["status"] == "failed"
    code, out = admin(stack, "retry-failed", "--reason", "VOLUME A_1")
    assert code == 1 and f"job {other} " not in out  # '_' is not a wildcard; the only match was retried already
    assert stack.job(other)["status"] == "failed"

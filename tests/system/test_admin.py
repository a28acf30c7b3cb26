"""`publisher-admin` against a real database (and, where it matters, real
workers): what the on-call person sees and what each action changes."""

import json
import re
import shutil
import subprocess
import sys
from datetime import datetime

from devstack import procs
from tests.conftest import CORPUS


def admin(stack, *args, database_url=None):
    env = {"PATH": str(procs.BIN) + ":/usr/bin:/bin", "DATABASE_URL": database_url or stack.db_url}
    # stdin is not a terminal, as in cron or a script: bulk commands need --yes.
    done = subprocess.run([sys.executable, "-m", "publisher.ops.admin", *map(str, args)], env=env, cwd=procs.ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
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
    assert f"oldest pending fresh lot: {pending} " in out
    assert "origin answered 404 Not Found for key 'c.jpg'" in out


def test_retry_runs_a_failed_job_again_and_it_publishes(make_stack, origin_root):
    stack = make_stack()
    stack.start_workers(processes=1, threads=2)
    stack.start_listener()
    job = stack.publish("arrives-late.jpg")  # not at the origin yet: 404, a permanent failure
    row = stack.wait_for(job)
    assert row["status"] == "failed" and "404" in row["last_error"]

    shutil.copy(CORPUS / "progressive.jpg", origin_root / "arrives-late.jpg")
    code, out = admin(stack, "retry-failed", "--yes", "--reason", "404 not found")
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
    code, out = admin(stack, "retry-failed", "--yes", "--reason", "404")
    assert code == 0 and f"job {not_found} " in out and f"job {deleted} " not in out
    statuses = {r["id"]: r["status"] for r in stack.sql("SELECT id, status FROM publish_jobs")}
    assert statuses[not_found] == "pending" and statuses[corrupt] == "failed" and statuses[deleted] == "failed"
    assert stack.job(not_found)["retry_count"] == 0

    code, out = admin(stack, "retry-failed", "--yes", "--reason", "nothing like this")
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


def test_a_lane_is_paused_and_resumed_by_name(make_stack):
    stack = make_stack()
    assert admin(stack, "lane", "pause", "backlog") == (0, "changed: lane backlog paused\n")
    again = admin(stack, "lane", "pause", "backlog")
    assert again == (1, "unchanged: lane backlog was paused already; nothing changed\n")
    assert stack.sql("SELECT lane FROM publisher_paused_lanes") == [{"lane": 2}]
    assert admin(stack, "lane", "resume", "backlog")[0] == 0
    code, out = admin(stack, "lane", "pause", "slow")
    assert code == 2 and "invalid choice: 'slow'" in out


def test_a_host_is_drained_and_resumed_by_its_id_and_status_shows_it(make_stack):
    stack = make_stack()  # no workers: the host beats as the workers' heartbeat does
    host = "worker-7-1234abcd"
    stack.sql("SELECT publisher_worker_beat(%s, %s, 'publish-host-worker-7', 3)", (f"{host}:1:1", host))
    assert admin(stack, "host", "drain", host) == (
        0, f"changed: host {host} draining: it finishes the jobs it has begun and takes no new ones\n")
    assert admin(stack, "host", "drain", host) == (1, f"unchanged: host {host} was draining already; nothing changed\n")
    code, out = admin(stack, "status")
    assert code == 0 and re.search(rf"  {host}: 1 process\(es\), .*; draining since .* by \S+ via "
                                   r"media-publisher-admin, 0 job\(s\) to finish", out), out
    assert admin(stack, "status", "--json")[1].count('"draining": true') == 1
    assert admin(stack, "host", "resume", host) == (
        0, f"changed: host {host} resumed: it takes new jobs from its next beat\n")
    assert "draining since" not in admin(stack, "status")[1]
    assert admin(stack, "host", "drain", "worker-typo") == (
        1, "unchanged: no worker host worker-typo has beaten; nothing changed\n")
    code, out = admin(stack, "host", "drain", "a/../b")
    assert code == 2 and "not a host id" in out


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
    code, out = admin(stack, "retry-failed", "--yes")
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
    code, out = admin(stack, "retry-failed", "--yes", "--reason", "95%")
    assert code == 0 and f"job {full} " in out and f"job {other} " not in out
    assert stack.job(other)["status"] == "failed"
    code, out = admin(stack, "retry-failed", "--yes", "--reason", "VOLUME A_1")
    assert code == 1 and f"job {other} " not in out  # '_' is not a wildcard; the only match was retried already
    assert stack.job(other)["status"] == "failed"


def test_bulk_commands_off_a_terminal_act_only_with_yes(make_stack):
    stack = make_stack()
    failed = failed_job(stack, "a.jpg", "fetch: origin answered 404 Not Found")
    code, out = admin(stack, "retry-failed")
    assert code == 2 and "pass --yes" in out and "Traceback" not in out
    code, out = admin(stack, "retry-failed", "--dry-run")
    assert code == 0 and f"would retry: job {failed} " in out
    assert stack.job(failed)["status"] == "failed"  # neither changed anything
    assert admin(stack, "retry-failed", "--yes")[0] == 0
    assert stack.job(failed)["status"] == "pending"


def test_list_filters_jobs_and_show_tells_one_jobs_history(make_stack):
    stack = make_stack()
    failed = failed_job(stack, "broken <b>.jpg", "variant: corrupt or truncated jpeg")
    pending = stack.publish("waiting.jpg")
    code, out = admin(stack, "list", "--status", "failed")
    assert code == 0 and f"{failed}  failed" in out and "broken <b>.jpg" in out and f"{pending} " not in out
    code, out = admin(stack, "list", "--reason", "TRUNCATED", "--since", "1h")
    assert code == 0 and "1 job(s)" in out
    assert admin(stack, "list", "--reason", "nothing like this")[0] == 1

    code, out = admin(stack, "show", failed)
    assert code == 0, out
    assert "created pending" in out and "pending -> failed" in out and "corrupt or truncated jpeg" in out
    assert admin(stack, "show", 999999)[0] == 1


def test_json_output_has_iso_8601_times_on_every_command(make_stack):
    stack = make_stack()
    job = failed_job(stack, "a.jpg", "fetch: origin answered 404 Not Found")
    for command in (["status"], ["list"], ["show", job], ["retry-failed", "--dry-run"], ["schema"]):
        code, out = admin(stack, *command, "--json")
        assert code == 0, (command, out)
        json.loads(out)
    shown = json.loads(admin(stack, "show", job, "--json")[1])
    assert datetime.fromisoformat(shown["created_at"]).tzinfo is not None
    assert [e["to_status"] for e in shown["timeline"]] == ["pending", "failed"]
    status = json.loads(admin(stack, "status", "--json")[1])
    assert datetime.fromisoformat(status["last_failures"][0]["updated_at"])


def test_bad_arguments_are_usage_errors_not_tracebacks(make_stack):
    stack = make_stack()
    for command in (["status", "--failures", "-3"], ["show", "-1"], ["list", "--since", "yesterday"],
                    ["list", "--status", "lost"], ["backfill", "--rate", "0"], ["retry", "12abc"]):
        code, out = admin(stack, *command)
        assert code == 2 and "Traceback" not in out and "error:" in out, (command, out)


def test_an_unreachable_database_exits_3(make_stack):
    stack = make_stack()
    for command in ("status", "migrate"):
        code, out = admin(stack, command, database_url="postgresql://nobody@127.0.0.1:1/none")
        assert code == 3 and "cannot connect to the database" in out, (command, out)
    assert "exit codes:" in admin(stack, "--help")[1]


def test_backfill_queues_each_unpublished_file_once_and_resumes(make_stack):
    stack = make_stack()
    never = [stack.sql("INSERT INTO auction_files (raid_key) VALUES (%s) RETURNING id::text AS id",
                       (f"never-{i}.jpg",))[0]["id"] for i in range(5)]
    failed = failed_job(stack, "failed.jpg", "fetch: origin answered 404 Not Found")
    active = stack.publish("active.jpg")
    code, out = admin(stack, "backfill", "--dry-run")
    assert code == 0 and "would queue a job for 6 file(s)" in out
    assert stack.sql("SELECT count(*) AS n FROM publish_jobs")[0]["n"] == 2

    code, out = admin(stack, "backfill", "--yes", "--limit", "2", "--rate", "100")
    assert code == 0 and "queued 2 job(s)" in out  # stopped early, as if interrupted
    code, out = admin(stack, "backfill", "--yes", "--rate", "100", "--json")
    assert code == 0 and len(json.loads(out)["queued"]) == 4  # it goes on where the first run stopped
    jobs = stack.sql("SELECT file_id::text AS file_id, status FROM publish_jobs ORDER BY id")
    per_file = {}
    for j in jobs:
        per_file.setdefault(j["file_id"], []).append(j["status"])
    assert all(per_file[f] == ["pending"] for f in never)
    assert per_file[stack.job(failed)["file_id"]] == ["failed", "pending"]
    assert per_file[stack.job(active)["file_id"]] == ["pending"]  # had a job: none added
    assert admin(stack, "backfill", "--yes")[0] == 1  # nothing left to do

"""Maintenance on a real database and bucket, run by the listener (pg_cron is
not installed here, which is the listener's fallback path): old jobs, broker
rows and soft-deleted files go, objects included; everything else stays."""

import io
import json
import subprocess
import sys
import urllib.request

from devstack import procs
from devstack.ports import free_port, wait_until


def put(stack, key):
    stack.s3.client().put_object(stack.s3.bucket, key, io.BytesIO(b"webp"), 4)


def published_file(stack, key, deleted_days_ago=None):
    """A published file with its objects in the bucket and a completed job, deleted N days ago if given."""
    file_id = stack.add_file(key)
    variants = {}
    for name in ("thumb", "display"):
        formats = {fmt: {"key": f"media/{file_id}/{name}-0123456789abcdef.{fmt}"} for fmt in ("webp", "avif")}
        variants[name] = {"key": formats["webp"]["key"], "formats": formats}
        for entry in formats.values():
            put(stack, entry["key"])
    put(stack, f"media/{file_id}/display-older0000000000.webp")  # a variant of an earlier publication
    stack.sql("UPDATE auction_files SET publish_status = 'published', published_at = now(), variants = %s, "
              "deleted_at = now() - %s * interval '1 day' WHERE id = %s",
              (json.dumps(variants), deleted_days_ago, file_id))
    job = stack.request_publish(file_id)
    stack.sql("UPDATE publish_jobs SET status = 'completed', completed_at = now() - interval '1 day' "
              "WHERE id = %s", (job,))
    return file_id, job


def broker_row(stack, state, hours_ago, queue="publish"):
    stack.sql("INSERT INTO dramatiq.queue (message_id, queue_name, state, mtime, message) "
              "VALUES (gen_random_uuid(), %s, %s, now() - %s * interval '1 hour', '{}') "
              "RETURNING message_id", (queue, state, hours_ago))


def worker_row(stack, host, hours_ago):
    stack.sql("INSERT INTO publisher_workers (worker_id, host_id, queue, threads, seen_at) "
              "VALUES (%s, %s, %s, 3, now() - %s * interval '1 hour')",
              (f"{host}:1:1", host, f"publish-host-{host}", hours_ago))


def test_listener_purges_what_is_old_and_keeps_the_rest(make_stack):
    port = free_port()
    stack = make_stack(MAINTENANCE_INTERVAL=1, COMPLETED_JOB_RETENTION_DAYS=90,
                             DELETED_FILE_RETENTION_DAYS=30, BROKER_RETENTION_HOURS=24, LISTENER_HTTP_PORT=port)
    old_job = stack.publish("old.jpg")
    recent_job = stack.publish("recent.jpg")
    stack.sql("UPDATE publish_jobs SET status = 'completed', completed_at = now() - interval '91 days' "
              "WHERE id = %s", (old_job,))
    stack.sql("UPDATE publish_jobs SET status = 'completed', completed_at = now() - interval '89 days' "
              "WHERE id = %s", (recent_job,))
    purged_file, _ = published_file(stack, "gone.jpg", deleted_days_ago=31)
    recently_deleted, _ = published_file(stack, "deleted-yesterday.jpg", deleted_days_ago=1)
    busy_file, _ = published_file(stack, "deleted-but-busy.jpg", deleted_days_ago=40)
    busy_job = stack.request_publish(busy_file)  # an active job: the file must not be touched
    live_file, _ = published_file(stack, "live.jpg")
    for state, hours in (("done", 25), ("rejected", 48), ("done", 1), ("queued", 72), ("consumed", 72)):
        broker_row(stack, state, hours)
    # A worker host gone for good (silent past WORKER_HOST_EXPIRY_SECONDS, a day) and
    # a message left in its queue; a host that beat an hour ago is kept.
    worker_row(stack, "gone-host", 25)
    worker_row(stack, "quiet-host", 1)
    broker_row(stack, "queued", 30, queue="publish-host-gone-host")

    stack.start_listener()  # no workers: the busy job stays active

    def purged():
        return not stack.sql("SELECT 1 FROM auction_files WHERE id = %s", (purged_file,)) and \
            not stack.sql("SELECT 1 FROM publish_jobs WHERE id = %s", (old_job,)) and \
            len(stack.sql("SELECT 1 FROM dramatiq.queue WHERE state IN ('done', 'rejected')")) == 1 and \
            not stack.sql("SELECT 1 FROM publisher_workers WHERE host_id = 'gone-host'")

    wait_until(purged, 60, "maintenance to purge the old rows")
    # The purged file's objects and earlier variants are gone from the bucket.
    assert stack.keys(f"media/{purged_file}/") == []
    # The lost host's message went with it; the quiet host is kept.
    assert not stack.sql("SELECT 1 FROM dramatiq.queue WHERE queue_name = 'publish-host-gone-host'")
    assert stack.sql("SELECT 1 FROM publisher_workers WHERE host_id = 'quiet-host'")
    assert not stack.sql("SELECT 1 FROM publish_jobs WHERE file_id = %s", (purged_file,))
    # Everything else is kept, objects included.
    for file_id in (recently_deleted, busy_file, live_file):
        assert stack.sql("SELECT 1 FROM auction_files WHERE id = %s", (file_id,))
        assert len(stack.keys(f"media/{file_id}/")) == 5  # two formats of two variants, and the earlier one
    assert stack.sql("SELECT status FROM publish_jobs WHERE id = %s", (busy_job,))[0]["status"] in (
        "pending", "queued")
    assert stack.sql("SELECT 1 FROM publish_jobs WHERE id = %s", (recent_job,))
    states = sorted(r["state"] for r in stack.sql("SELECT state::text FROM dramatiq.queue "
                                                  "WHERE queue_name = 'publish'"))
    assert "done" in states and "queued" in states and "consumed" in states and "rejected" not in states
    # The listener's metrics say what maintenance removed.
    def counted():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
        return all(f'publisher_maintenance_deleted_total{{what="{what}"}} {n}.0' in text
                   for what, n in (("files", 1), ("completed_jobs", 1), ("broker_messages", 2), ("lost_hosts", 1)))

    wait_until(counted, 30, "the listener's maintenance counters")


def test_admin_maintain_runs_one_round_and_says_what_it_removed(make_stack):
    stack = make_stack(DELETED_FILE_RETENTION_DAYS=30)
    file_id, _ = published_file(stack, "gone.jpg", deleted_days_ago=45)
    env = dict(stack.env)
    done = subprocess.run([sys.executable, "-m", "publisher.ops.admin", "maintain", "--yes"], env=env,
                          cwd=procs.ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "removed: 1 files" in done.stdout
    assert stack.keys(f"media/{file_id}/") == []


def test_purging_a_file_whose_variants_name_another_files_objects_removes_only_its_own(make_stack):
    """However a purged file's variants came to name other keys (a worker, a hand edit, an
    earlier release), maintenance removes only what lies in that file's own folder."""
    stack = make_stack(DELETED_FILE_RETENTION_DAYS=30)
    live, _ = published_file(stack, "live.jpg")
    live_keys = stack.keys(f"media/{live}/")
    gone, _ = published_file(stack, "gone.jpg", deleted_days_ago=45)
    elsewhere = "shared/logo.webp"
    put(stack, elsewhere)
    variants = stack.sql("SELECT variants FROM auction_files WHERE id = %s", (gone,))[0]["variants"]
    variants["stolen"] = {"key": live_keys[0], "formats": {
        "webp": {"key": live_keys[1]}, "avif": {"key": elsewhere}}}
    stack.sql("UPDATE auction_files SET variants = %s WHERE id = %s", (json.dumps(variants), gone))
    done = subprocess.run([sys.executable, "-m", "publisher.ops.admin", "maintain", "--yes"], env=dict(stack.env),
                          cwd=procs.ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "removed: 1 files" in done.stdout
    assert stack.keys(f"media/{gone}/") == []
    assert stack.keys(f"media/{live}/") == live_keys
    assert stack.keys("shared/") == [elsewhere]


def test_schedule_file_is_a_no_op_without_pg_cron(make_stack):
    stack = make_stack()  # sql/ applied, 007_pg_cron.sql included
    assert not stack.sql("SELECT 1 FROM pg_extension WHERE extname = 'pg_cron'")
    assert not stack.sql("SELECT 1 FROM pg_namespace WHERE nspname = 'cron'")
    # The functions pg_cron would call work without arguments (retention from database settings).
    stack.sql("ALTER DATABASE " + stack.db_url.rsplit("/", 1)[-1] + " SET publisher.completed_job_retention = "
              "'10 days'")
    job = stack.publish("x.jpg")
    stack.sql("UPDATE publish_jobs SET status = 'completed', completed_at = now() - interval '11 days' "
              "WHERE id = %s", (job,))
    assert stack.sql("SELECT publisher_purge_completed_jobs() AS n")[0]["n"] == 1


def republished(stack, file_id, name, days_ago):
    """The file's variants replaced by a republish `days_ago` days ago; returns the new keys."""
    keys = {fmt: f"media/{file_id}/{name}.{fmt}" for fmt in ("webp", "avif")}
    for key in keys.values():
        put(stack, key)
    variants = {"thumb": {"key": keys["webp"], "formats": {fmt: {"key": k} for fmt, k in keys.items()}}}
    stack.sql("UPDATE auction_files SET variants = %s WHERE id = %s", (json.dumps(variants), file_id))
    stack.sql("UPDATE publisher_objects SET since = now() - %s * interval '1 day' "
              "WHERE file_id = %s AND state = 'superseded' AND since > now() - interval '1 minute'",
              (days_ago, file_id))
    return sorted(keys.values())


def test_objects_a_republish_superseded_leave_after_the_grace_and_old_history_goes(make_stack):
    stack = make_stack(SUPERSEDED_OBJECT_GRACE_DAYS=7, JOB_EVENT_RETENTION_DAYS=90, EVENT_RETENTION_DAYS=7)
    long_ago, job = published_file(stack, "republished-long-ago.jpg")
    first = sorted(stack.keys(f"media/{long_ago}/"))
    current = republished(stack, long_ago, "thumb-2222222222222222", days_ago=8)
    recently, _ = published_file(stack, "republished-yesterday.jpg")
    kept_for_caches = sorted(stack.keys(f"media/{recently}/"))
    republished(stack, recently, "thumb-3333333333333333", days_ago=1)
    # Published A, then B, then A again (the same bytes): A is current, only B goes.
    back, _ = published_file(stack, "back-to-the-first.jpg")
    original = stack.sql("SELECT variants FROM auction_files WHERE id = %s", (back,))[0]["variants"]
    detour = republished(stack, back, "thumb-4444444444444444", days_ago=8)
    stack.sql("UPDATE auction_files SET variants = %s WHERE id = %s", (json.dumps(original), back))
    stack.sql("UPDATE publisher_objects SET since = now() - interval '8 days' "
              "WHERE file_id = %s AND state = 'superseded'", (back,))
    # History: one job's events are 91 days old; webhook events delivered 8 days ago, and one still being tried.
    stack.sql("UPDATE publish_job_events SET at = now() - interval '91 days' WHERE job_id = %s", (job,))
    stack.sql("INSERT INTO publish_event_outbox (event_id, payload, delivered_at, created_at) "
              "VALUES (gen_random_uuid(), '{}', now() - interval '8 days', now() - interval '8 days'), "
              "(gen_random_uuid(), '{}', NULL, now() - interval '30 days')")

    done = subprocess.run([sys.executable, "-m", "publisher.ops.admin", "maintain", "--yes", "--json"],
                          env=dict(stack.env), cwd=procs.ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

    old_variants = [k for k in first if k.rsplit("/", 1)[1].startswith(("thumb-0", "display-0"))]
    assert old_variants and set(stack.keys(f"media/{long_ago}/")).isdisjoint(old_variants)
    assert set(current) <= set(stack.keys(f"media/{long_ago}/"))
    assert set(kept_for_caches) <= set(stack.keys(f"media/{recently}/"))  # within the grace: still served
    back_keys = set(stack.keys(f"media/{back}/"))
    assert set(detour).isdisjoint(back_keys) and {v["key"] for v in original.values()} <= back_keys
    assert stack.sql("SELECT count(*) AS n FROM publish_job_events WHERE job_id = %s", (job,)) == [{"n": 0}]
    assert stack.sql("SELECT count(*) AS n FROM publish_job_events") != [{"n": 0}]
    assert stack.sql("SELECT count(*) AS n, count(delivered_at) AS delivered FROM publish_event_outbox") == [
        {"n": 1, "delivered": 0}]
    report = json.loads(done.stdout)
    assert report["removed"]["unpublished_objects"] == 6 and report["removed"]["webhook_events"] == 1

"""publisher-web over HTTP, against a real database: what each page shows, and
who may change what (Starlette's TestClient runs the app in the test)."""

import logging
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from starlette.testclient import TestClient

from devstack import postgres, procs
from publisher.settings.job import ConfigError
from publisher.settings.web import load_web_settings
from publisher.web.app import create_app

TOKEN = "an-admin-token-of-some-length"


def client(stack, database_url=None, host="localhost", client_address=("127.0.0.1", 50000), **env):
    settings = load_web_settings({"DATABASE_URL": database_url or stack.db_url, "CDN_BASE_URL": "https://cdn.test",
                                  **env})
    return TestClient(create_app(settings), base_url=f"http://{host}", follow_redirects=False, client=client_address)


def same_server(web, **kwargs):
    """Another browser (or another client address) on the server of `web`."""
    return TestClient(web.app, base_url="http://localhost", follow_redirects=False, **kwargs)


def failed_job(stack, key, error, reason=None):
    job = stack.publish(key)
    stack.sql("UPDATE publish_jobs SET status = 'failed', last_error = %s, failure_reason = %s WHERE id = %s",
              (error, reason, job))
    return job


def status_of(stack, job):
    return stack.job(job)["status"]


def log_in(web):
    form = web.get("/login")
    assert form.status_code == 200
    response = web.post("/login", data={"token": TOKEN, "next": "/jobs"})
    assert response.status_code == 303 and response.headers["location"] == "/jobs"
    return response


def csrf_of(web, path):
    page = web.get(path).text
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


@pytest.fixture
def db(make_stack):
    return make_stack()  # the schema, no listener or workers: jobs stay where a test puts them


def test_the_overview_counts_the_last_days_completions_not_the_whole_history(db):
    for age in ("1 hour", "23 hours", "25 hours", "60 days"):
        job = db.publish(f"done-{age.replace(' ', '-')}.jpg")
        db.sql("UPDATE publish_jobs SET status = 'completed', completed_at = now() - %s::interval WHERE id = %s",
               (age, job))
    summary = client(db).get("/api/summary").json()
    assert summary["completed_last_day"] == 2 and "completed" not in summary["jobs"]
    assert 'data-status="completed">2<' in client(db).get("/").text


def test_the_overview_counts_jobs_per_status_and_groups_failures_by_reason(db):
    db.publish("waiting.jpg")
    failed_job(db, "gone-1.jpg", "fetch: origin answered 404 Not Found for 'gone-1.jpg'", "origin_404")
    latest = failed_job(db, "gone-2.jpg", "fetch: origin answered 404 Not Found for 'gone-2.jpg'", "origin_404")
    failed_job(db, "broken.jpg", "variant: not an image", "corrupt_image")
    done = db.publish("done.jpg")
    db.sql("UPDATE publish_jobs SET status = 'completed', completed_at = now() WHERE id = %s", (done,))
    web = client(db)

    summary = web.get("/api/summary").json()
    assert summary["jobs"] == {"pending": 1, "queued": 0, "processing": 0, "failed": 3, "cancelled": 0}
    assert summary["completed_last_day"] == 1
    assert summary["last_hour"]["completed"] == 1 and summary["last_hour"]["failed"] == 3
    assert len(summary["last_hour"]["per_minute"]) == 60
    by_reason = {f["reason"]: f for f in summary["failures"]}
    assert by_reason["origin_404"]["count"] == 2 and by_reason["origin_404"]["latest_job"] == latest
    assert "gone-2.jpg" in by_reason["origin_404"]["example"]
    assert summary["oldest_pending"]["age_seconds"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", summary["read_at"])

    page = web.get("/")
    assert page.status_code == 200
    assert 'data-status="failed">3<' in page.text and 'data-status="pending">1<' in page.text
    assert "origin_404" in page.text and "corrupt_image" in page.text
    assert "Retry" not in page.text  # read-only: no action is offered
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    fragment = web.get("/overview")
    assert fragment.status_code == 200 and "<html" not in fragment.text and 'data-status="failed">3<' in fragment.text


def test_the_latest_publishes_are_drawn_from_their_cdn_thumb_over_their_placeholder(db):
    file_id = db.add_file("lot-7.jpg")
    db.request_publish(file_id)
    db.sql("""UPDATE auction_files SET publish_status = 'published', published_at = now(),
                     placeholder = 'data:image/webp;base64,UklGRg==', dominant_color = '#a0b0c0',
                     variants = '{"thumb": {"url": "https://cdn.test/t/abc.webp", "width": 400, "height": 300,
                                            "bytes": 1234}}' WHERE id = %s""", (file_id,))
    hostile = db.add_file("lot-8.jpg")
    db.sql("""UPDATE auction_files SET publish_status = 'published', published_at = now(),
                     placeholder = 'javascript:alert(1)', dominant_color = 'red; background: url(x)'
               WHERE id = %s""", (hostile,))
    page = client(db).get("/").text
    assert '<img class="lqip" src="data:image/webp;base64,UklGRg=="' in page
    assert 'src="https://cdn.test/t/abc.webp"' in page and "background-color: #a0b0c0" in page
    assert "javascript:" not in page and "url(x)" not in page


def test_every_value_from_the_database_is_shown_as_text(db):
    key = "<script>alert('key')</script>.jpg"
    error = '<img src=x onerror="alert(1)"> failed'
    job = failed_job(db, key, error, "origin_404")
    web = client(db)
    for path in ("/", "/overview", "/jobs", f"/jobs/{job}", "/jobs?status=failed&reason=<marquee>"):
        page = web.get(path).text
        assert "<script>alert" not in page and "<img src=x" not in page and "<marquee>" not in page, path
    assert "&lt;script&gt;alert(&#39;key&#39;)&lt;/script&gt;.jpg" in web.get(f"/jobs/{job}").text
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; failed" in web.get("/jobs").text


def test_the_job_list_filters_by_status_and_reason_and_pages(db):
    files = [r["id"] for r in db.sql("INSERT INTO auction_files (raid_key) SELECT 'lot-' || g || '.jpg' "
                                     "FROM generate_series(1, 57) g RETURNING id::text AS id")]
    jobs = [r["id"] for r in db.sql("INSERT INTO publish_jobs (file_id) SELECT unnest(%s::uuid[]) RETURNING id",
                                    (files,))]
    db.sql("UPDATE publish_jobs SET status = 'failed', last_error = 'RAID answered 503', "
           "failure_reason = 'origin_unavailable' WHERE id = ANY(%s)", (jobs[:3],))
    web = client(db)

    first = web.get("/jobs")
    assert first.text.count('<tr class="') == 50 and 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = web.get("/jobs?page=2")
    assert second.text.count('<tr class="') == 7 and 'rel="next"' not in second.text
    failed = web.get("/jobs?status=failed&reason=origin_unavailable").text
    assert failed.count('<tr class="failed">') == 3
    assert web.get("/jobs?status=failed&reason=raid answered").text.count('<tr class="failed">') == 3
    assert web.get("/jobs?status=failed&reason=100%").text.count('<tr class="failed">') == 0  # literal, no wildcard

    assert web.get("/jobs?status=lost").status_code == 400
    assert web.get("/jobs?page=0").status_code == 400
    assert web.get("/jobs?page=x").status_code == 400


def test_the_job_list_finds_a_file_by_its_id_or_the_start_of_its_raid_key(db):
    keys = ["auction-7/lot-1.jpg", "auction-7/lot-2.jpg", "auction-70/lot-1.jpg", "auction-8/lot-1.jpg",
            "auction_7/lot-9.jpg"]
    files = {r["raid_key"]: r["id"] for r in db.sql("INSERT INTO auction_files (raid_key) SELECT unnest(%s::text[]) "
                                                    "RETURNING id::text AS id, raid_key", (keys,))}
    jobs = {r["file_id"]: r["id"] for r in db.sql("INSERT INTO publish_jobs (file_id) SELECT unnest(%s::uuid[]) "
                                                  "RETURNING id, file_id::text AS file_id", (list(files.values()),))}
    web = client(db)

    def listed(query: str) -> set[int]:
        page = web.get("/jobs?" + urllib.parse.urlencode({"q": query}))
        assert page.status_code == 200
        return {int(j) for j in re.findall(r'<a href="/jobs/(\d+)">', page.text)}

    one = files["auction-8/lot-1.jpg"]
    assert listed(one) == {jobs[one]} and listed(one.upper()) == {jobs[one]}
    assert listed("auction-7/") == {jobs[files[k]] for k in ("auction-7/lot-1.jpg", "auction-7/lot-2.jpg")}
    assert listed("auction-7") == {jobs[files[k]] for k in keys[:3]}
    # the key's characters are literal: _ and % match themselves, not any character
    assert listed("auction_7") == {jobs[files["auction_7/lot-9.jpg"]]}
    assert listed("auction%") == set()
    # the search is kept while paging and filtering
    assert 'name="q" value="auction-7/"' in web.get("/jobs?q=auction-7/").text


def test_the_overview_shows_what_waits_in_each_lane_and_when_it_drains(db):
    files = [r["id"] for r in db.sql("INSERT INTO auction_files (raid_key) SELECT 'lot-' || g || '.jpg' "
                                     "FROM generate_series(1, 9) g RETURNING id::text AS id")]
    db.sql("INSERT INTO publish_jobs (file_id, lane) SELECT f, CASE WHEN n <= 2 THEN 0 ELSE 2 END "
           "FROM unnest(%s::uuid[]) WITH ORDINALITY AS u(f, n) WHERE n <= 8", (files,))
    # one job completed in the last minutes: the rate the estimate drains at
    db.sql("INSERT INTO publish_jobs (file_id, status, completed_at) VALUES (%s, 'completed', now())", (files[8],))
    web = client(db)
    lanes = {lane["lane"]: lane for lane in web.get("/api/summary").json()["lanes"]}
    assert [(name, lanes[name]["pending"]) for name in ("fresh", "retry", "backlog")] == [
        ("fresh", 2), ("retry", 0), ("backlog", 6)]
    per_second = 1 / 900  # one job in the 15-minute window
    assert lanes["fresh"]["drained_in_seconds"] == pytest.approx(2 / per_second)
    assert lanes["backlog"]["drained_in_seconds"] == pytest.approx(8 / per_second)  # after the fresh lane
    page = web.get("/").text
    assert re.search(r'<tr data-lane="backlog"><td>backlog</td><td class="n">6</td>', page)


def test_the_last_day_is_charted_minute_by_minute_with_the_insert_to_published_percentiles(db):
    files = [r["id"] for r in db.sql("INSERT INTO auction_files (raid_key) SELECT 'lot-' || g || '.jpg' "
                                     "FROM generate_series(1, 24) g RETURNING id::text AS id")]
    # 20 published 3 hours ago, taking 1..20 s from INSERT; 3 failed an hour ago; one older than a day
    db.sql("INSERT INTO publish_jobs (file_id, status, created_at, completed_at, updated_at) "
           "SELECT f, 'completed', t.at - make_interval(secs => n), t.at, now() "
           "FROM unnest(%s::uuid[]) WITH ORDINALITY AS u(f, n), "
           "(SELECT date_trunc('minute', now()) - interval '3 hours' + interval '10 seconds' AS at) t", (files[:20],))
    db.sql("INSERT INTO publish_jobs (file_id, status, last_error, updated_at) "
           "SELECT f, 'failed', 'x', now() - interval '1 hour' FROM unnest(%s::uuid[]) AS f", (files[20:23],))
    db.sql("INSERT INTO publish_jobs (file_id, status, created_at, completed_at) "
           "VALUES (%s, 'completed', now() - interval '25 hours', now() - interval '25 hours')", (files[23],))
    web = client(db)
    minutes = web.get("/api/charts").json()
    assert len(minutes) == 1440
    assert sum(m["completed"] for m in minutes) == 20 and sum(m["failed"] for m in minutes) == 3
    busy, = [m for m in minutes if m["completed"]]
    assert busy["p50_seconds"] == pytest.approx(10.5) and busy["p95_seconds"] == pytest.approx(19.05)
    assert {m["p50_seconds"] for m in minutes if not m["completed"]} == {None}
    page = web.get("/charts").text
    assert '<b class="published-day">20</b>' in page and '<b class="failed-day">3</b>' in page
    # a bar for each of the two minutes with an end (the failed one on an empty published bar), one latency bar
    bars = [page.count(f'<rect class="{kind}"') for kind in ("ok", "bad", "p50")]
    assert bars == [2, 1, 1]


def test_a_job_page_shows_its_file_timeline_error_and_variants(db):
    job = db.publish("lot-3.jpg")
    db.sql("UPDATE publish_jobs SET status = 'queued' WHERE id = %s", (job,))
    db.sql("UPDATE publish_jobs SET status = 'failed', last_error = 'variant: truncated JPEG', "
           "failure_reason = 'corrupt_image' WHERE id = %s", (job,))
    db.sql("""UPDATE auction_files SET variants = '{"display": {"url": "https://cdn.test/d/ff.webp", "width": 1600,
              "height": 1200, "bytes": 98765}}' WHERE raid_key = 'lot-3.jpg'""")
    page = client(db).get(f"/jobs/{job}")
    assert page.status_code == 200
    assert "lot-3.jpg" in page.text and "corrupt_image: variant: truncated JPEG" in page.text
    assert "1600 × 1200" in page.text and "98765" in page.text and "https://cdn.test/d/ff.webp" in page.text
    timeline = re.findall(r"<li><time>", page.text)
    assert len(timeline) == 3  # created pending, pending -> queued, queued -> failed
    assert "queued → <b>failed</b>" in page.text

    missing = client(db).get("/jobs/987654")
    assert missing.status_code == 404 and "no job 987654" in missing.text


def test_without_admin_token_the_page_has_no_mutating_route(db):
    job = failed_job(db, "a.jpg", "fetch: origin answered 404", "origin_404")
    web = client(db)
    for path, data in ((f"/jobs/{job}/retry", {}), (f"/jobs/{job}/cancel", {}),
                       ("/failures/retry", {"reason": "origin_404"}), ("/lanes/backlog/pause", {}),
                       ("/hosts/worker-7-1234abcd/drain", {}), ("/login", {"token": TOKEN})):
        assert web.post(path, data=data).status_code in (404, 405), path
    assert web.get("/login").status_code == 404
    assert status_of(db, job) == "failed"
    assert "Log in" not in web.get("/").text


def test_an_action_needs_a_login_with_the_token_and_the_sessions_csrf_token(db):
    job = failed_job(db, "a.jpg", "fetch: origin answered 404", "origin_404")
    web = client(db, ADMIN_TOKEN=TOKEN)

    assert web.post(f"/jobs/{job}/retry", data={"csrf": "guess"}).status_code == 401
    wrong = web.post("/login", data={"token": TOKEN[:-1], "next": "/"})
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    assert status_of(db, job) == "failed"

    cookie = log_in(web).headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert web.post(f"/jobs/{job}/retry", data={}).status_code == 403
    assert web.post(f"/jobs/{job}/retry", data={"csrf": "guess"}).status_code == 403
    assert status_of(db, job) == "failed"

    csrf = csrf_of(web, f"/jobs/{job}")
    done = web.post(f"/jobs/{job}/retry", data={"csrf": csrf})
    assert done.status_code == 303 and done.headers["location"] == f"/jobs/{job}"
    assert status_of(db, job) == "pending"
    assert "set to pending" in web.get(f"/jobs/{job}").text or "pending" in web.get(f"/jobs/{job}").text
    assert web.post("/jobs/987654/retry", data={"csrf": csrf}).status_code == 404

    other = client(db, ADMIN_TOKEN=TOKEN)  # another browser: its own session, no login
    assert other.post(f"/jobs/{job}/cancel", data={"csrf": csrf}).status_code == 401
    assert status_of(db, job) == "pending"
    assert web.post(f"/jobs/{job}/cancel", data={"csrf": csrf}).status_code == 303
    assert status_of(db, job) == "cancelled"

    assert web.post("/logout", data={"csrf": csrf}).status_code == 303
    assert web.post(f"/jobs/{job}/retry", data={"csrf": csrf}).status_code == 401


def test_the_failures_of_one_reason_are_retried_together(db):
    gone = [failed_job(db, f"gone-{i}.jpg", "fetch: origin answered 404", "origin_404") for i in range(3)]
    broken = failed_job(db, "broken.jpg", "variant: not an image", "corrupt_image")
    web = client(db, ADMIN_TOKEN=TOKEN)
    log_in(web)
    csrf = csrf_of(web, "/")
    assert web.post("/failures/retry", data={"csrf": csrf, "reason": ""}).status_code == 400
    assert web.post("/failures/retry", data={"csrf": csrf, "reason": "origin_404"}).status_code == 303
    assert [status_of(db, j) for j in gone] == ["pending"] * 3
    assert status_of(db, broken) == "failed"
    overview = web.get("/").text
    assert overview.count("failed -&gt; pending") == 3  # what changed, once, after the redirect
    assert "failed -&gt; pending" not in web.get("/").text


def jobs_of(db, keys, status=None, reason=None):
    """A job of a new file for each RAID key, left in `status`."""
    jobs = [db.publish(key) for key in keys]
    if status:
        db.sql("UPDATE publish_jobs SET status = %s, failure_reason = %s, last_error = %s WHERE id = ANY(%s)",
               (status, reason, reason and f"fetch: {reason}", jobs))
    return jobs


def test_a_filter_wide_retry_is_previewed_and_changes_nothing_until_confirmed(db):
    matching = jobs_of(db, [f"sale-12/lot-{i}.jpg" for i in range(4)], "failed", "origin_404")
    other_reason = jobs_of(db, ["sale-12/lot-9.jpg"], "failed", "corrupt_image")
    other_sale = jobs_of(db, ["sale-120/lot-1.jpg", "sale-13/lot-1.jpg"], "failed", "origin_404")
    running = jobs_of(db, ["sale-12/lot-7.jpg"], "processing")[0]
    web = client(db, ADMIN_TOKEN=TOKEN)
    query = "status=failed&reason=origin_404&q=sale-12%2F"

    # the list shows what the action would change and offers it; the preview needs a login and leads
    # back to itself after one
    listed = web.get(f"/jobs?{query}").text
    assert listed.count('<tr class="failed">') == 4 and "/jobs/bulk/retry?" in listed
    refused = web.get(f"/jobs/bulk/retry?{query}")
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login?next=%2Fjobs%2Fbulk%2Fretry")
    log_in(web)
    preview = web.get(f"/jobs/bulk/retry?{query}")
    assert preview.status_code == 200
    assert '<b class="count">4</b>' in preview.text and "Retry 4 job(s)" in preview.text
    assert {status_of(db, j) for j in matching} == {"failed"}  # a preview changes nothing
    # jobs that fail after the preview are not run again unseen: a new one, and one that was running
    late = jobs_of(db, ["sale-12/lot-5.jpg"], "failed", "origin_404")[0]
    db.sql("UPDATE publish_jobs SET status = 'failed', failure_reason = 'origin_404' WHERE id = %s", (running,))

    form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', preview.text))
    assert web.post("/jobs/bulk/retry", data={**form, "csrf": "wrong"}).status_code == 403
    assert {status_of(db, j) for j in matching} == {"failed"}
    done = web.post("/jobs/bulk/retry", data=form)
    assert done.status_code == 303 and done.headers["location"] == f"/jobs?{query}"
    assert [status_of(db, j) for j in matching] == ["pending"] * 4
    assert {db.job(j)["lane"] for j in matching} == {1}  # the retry lane
    assert [status_of(db, j) for j in [*other_reason, *other_sale, late, running]] == ["failed"] * 5
    assert "4 job(s) run again of the 4 the preview counted" in web.get(f"/jobs?{query}").text


def test_a_filter_wide_cancel_cancels_only_what_has_not_started_a_step(db):
    waiting = jobs_of(db, [f"sale-3/lot-{i}.jpg" for i in range(3)])
    running = jobs_of(db, ["sale-3/lot-8.jpg"], "processing")
    failed = jobs_of(db, ["sale-3/lot-9.jpg"], "failed", "origin_404")
    web = client(db, ADMIN_TOKEN=TOKEN)
    log_in(web)
    preview = web.get("/jobs/bulk/cancel?q=sale-3%2F")
    assert '<b class="count">3</b>' in preview.text
    form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', preview.text))
    # one of them begins its first step between the preview and the confirmation
    db.sql("UPDATE publish_jobs SET status = 'queued', step_started_at = now() WHERE id = %s", (waiting[0],))
    assert web.post("/jobs/bulk/cancel", data=form).status_code == 303
    assert [status_of(db, j) for j in waiting] == ["queued", "cancelled", "cancelled"]
    assert [status_of(db, j) for j in [*running, *failed]] == ["processing", "failed"]
    assert "2 job(s) cancelled of the 3 the preview counted" in web.get("/jobs?q=sale-3%2F").text


def test_a_bulk_action_refuses_what_it_cannot_read(db):
    web = client(db, ADMIN_TOKEN=TOKEN)
    log_in(web)
    csrf = csrf_of(web, "/")
    assert web.get("/jobs/bulk/delete?status=failed").status_code == 404
    assert web.get("/jobs/bulk/retry?status=lost").status_code == 400
    # the preview's time is missing, not a time, or without its offset
    for as_of in (None, "1e9", "2026-12-07T10:00:00", "x" * 1000):
        form = {"csrf": csrf, "status": "failed", **({"as_of": as_of} if as_of else {})}
        assert web.post("/jobs/bulk/retry", data=form).status_code == 400, as_of
    nothing = web.get("/jobs/bulk/cancel?q=no-such-key")
    assert '<b class="count">0</b>' in nothing.text and 'action="/jobs/bulk/cancel"' not in nothing.text


def test_a_lane_is_paused_and_resumed_from_the_overview(db):
    web = client(db, ADMIN_TOKEN=TOKEN)
    assert web.post("/lanes/backlog/pause", data={}).status_code == 401  # no login, no action
    log_in(web)
    csrf = csrf_of(web, "/")
    assert web.post("/lanes/backlog/pause", data={"csrf": "wrong"}).status_code == 403
    assert web.post("/lanes/backlog/pause", data={"csrf": csrf}).status_code == 303
    assert db.sql("SELECT lane FROM publisher_paused_lanes") == [{"lane": 2}]
    page = web.get("/").text
    assert "lane backlog paused" in page
    assert re.search(r'<tr data-lane="backlog">.*?<td>paused</td>.*?action="/lanes/backlog/resume"', page, re.S)
    # pausing again changes nothing and says so; an unknown lane is a 404
    assert web.post("/lanes/backlog/pause", data={"csrf": csrf}).status_code == 303
    assert "lane backlog was paused already; nothing changed" in web.get("/").text
    assert web.post("/lanes/slow/pause", data={"csrf": csrf}).status_code == 404
    assert web.post("/lanes/backlog/resume", data={"csrf": csrf}).status_code == 303
    assert db.sql("SELECT lane FROM publisher_paused_lanes") == []


HOST = "worker-7-1234abcd"


def beat(stack, host=HOST):
    """A worker process of `host` beats, as the workers' heartbeat does."""
    stack.sql("SELECT publisher_worker_beat(%s, %s, %s, 3)", (f"{host}:1:1", host, "publish-host-worker-7"))


def host_row(page, host=HOST):
    return re.search(rf'<tr class="[^"]*" data-host="{host}">.*?</tr>', page, re.S).group(0)


def test_a_host_is_drained_and_resumed_from_the_overview(db):
    beat(db)
    web = client(db, ADMIN_TOKEN=TOKEN)
    assert web.post(f"/hosts/{HOST}/drain", data={}).status_code == 401  # no login, no action
    log_in(web)
    csrf = csrf_of(web, "/")
    assert f'action="/hosts/{HOST}/drain"' in host_row(web.get("/").text)
    assert web.post(f"/hosts/{HOST}/drain", data={"csrf": "wrong"}).status_code == 403
    assert db.sql("SELECT host_id FROM publisher_draining_hosts") == []

    assert web.post(f"/hosts/{HOST}/drain", data={"csrf": csrf}).status_code == 303
    assert db.sql("SELECT host_id FROM publisher_draining_hosts") == [{"host_id": HOST}]
    page = web.get("/").text
    assert f"host {HOST} draining: it finishes the jobs it has begun and takes no new ones" in page
    row = host_row(page)
    assert "draining</span>, 0 job(s) to finish" in row and f'action="/hosts/{HOST}/resume"' in row
    # Its workers stopped and were forgotten: it is still listed, still draining.
    db.sql("DELETE FROM publisher_workers")
    row = host_row(web.get("/").text)
    assert "draining</span>" in row and "<td>none</td>" in row and f'action="/hosts/{HOST}/resume"' in row

    assert web.post(f"/hosts/{HOST}/resume", data={"csrf": csrf}).status_code == 303
    assert db.sql("SELECT host_id FROM publisher_draining_hosts") == []
    assert f"host {HOST} resumed" in web.get("/").text


def test_a_host_action_names_only_a_host_id_and_a_host_that_has_beaten(db):
    web = client(db, ADMIN_TOKEN=TOKEN)
    log_in(web)
    csrf = csrf_of(web, "/")
    for bad in ("%3Cscript%3E", "a%20b", "x" * 201, "h%C3%B4st"):
        refused = web.post(f"/hosts/{bad}/drain", data={"csrf": csrf})
        assert refused.status_code == 404 and "<script>" not in refused.text, bad
    assert web.post("/hosts/worker-typo/drain", data={"csrf": csrf}).status_code == 303
    assert "no worker host worker-typo has beaten; nothing changed" in web.get("/").text
    assert db.sql("SELECT host_id FROM publisher_draining_hosts") == []
    # A worker names its own host: one that is no host id is shown as text, with no button.
    beat(db, "<b>odd</b>")
    page = web.get("/").text
    assert "&lt;b&gt;odd&lt;/b&gt;" in page and "/hosts/<b>" not in page and "/hosts/&lt;b" not in page


def test_no_secret_is_rendered(make_stack):
    stack = make_stack()
    failed_job(stack, "a.jpg", "fetch: origin answered 404", "origin_404")
    web = client(stack, ADMIN_TOKEN=TOKEN)
    log_in(web)
    for path in ("/", "/overview", "/jobs", "/jobs/1", "/api/summary", "/login"):
        body = web.get(path).text
        assert TOKEN not in body and stack.db_url not in body, path
    assert TOKEN not in repr(load_web_settings({"DATABASE_URL": stack.db_url, "ADMIN_TOKEN": TOKEN}))


def test_it_works_under_the_read_only_role_and_refuses_actions_there(make_stack):
    stack = make_stack()
    job = failed_job(stack, "a.jpg", "fetch: origin answered 404", "origin_404")
    user = f"web_readonly_{job}_{stack.db_url.rsplit('/', 1)[-1]}"[:60]
    postgres.query(stack.pg.admin_url, f'CREATE ROLE "{user}" LOGIN IN ROLE publisher_readonly')
    parts = urlsplit(stack.db_url)
    readonly = urlunsplit(parts._replace(netloc=f"{user}@{parts.netloc.rsplit('@', 1)[-1]}"))
    web = client(stack, database_url=readonly, ADMIN_TOKEN=TOKEN)
    try:
        for path in ("/", "/overview", "/jobs", f"/jobs/{job}", "/api/summary"):
            assert web.get(path).status_code == 200, path
        log_in(web)
        refused = web.post(f"/jobs/{job}/retry", data={"csrf": csrf_of(web, f"/jobs/{job}")})
        assert refused.status_code == 403 and "publisher_oncall" in refused.text
        assert status_of(stack, job) == "failed"
    finally:
        web.app.state.database.close()
        postgres.query(stack.pg.admin_url, f'DROP ROLE IF EXISTS "{user}"')


def test_an_unreachable_database_is_a_clear_503(db):
    web = client(db, database_url="postgresql://nobody@127.0.0.1:1/none")
    page = web.get("/")
    assert page.status_code == 503 and "the database is unreachable" in page.text


def test_bad_settings_are_named_and_refused():
    with pytest.raises(ConfigError, match="ADMIN_TOKEN: at least 16 characters"):
        load_web_settings({"DATABASE_URL": "postgresql://x/y", "ADMIN_TOKEN": "short"})
    with pytest.raises(ConfigError, match="WEB_PORT"):
        load_web_settings({"DATABASE_URL": "postgresql://x/y", "WEB_PORT": "99999"})
    done = subprocess.run([sys.executable, "-m", "publisher.web"], env={"PATH": "/usr/bin:/bin"}, cwd=procs.ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "DATABASE_URL: missing (required)" in done.stderr


def test_a_session_cookie_copied_before_logout_is_refused_after_it(db):
    job = failed_job(db, "a.jpg", "fetch: origin answered 404", "origin_404")
    web = client(db, ADMIN_TOKEN=TOKEN)
    log_in(web)
    csrf = csrf_of(web, f"/jobs/{job}")
    copied = dict(web.cookies)  # what a thief (or a shared machine's next user) keeps
    assert web.post("/logout", data={"csrf": csrf}).status_code == 303
    replay = same_server(web, cookies=copied)
    refused = replay.post(f"/jobs/{job}/retry", data={"csrf": csrf})
    assert refused.status_code == 401
    assert status_of(db, job) == "failed"
    assert "Log out" not in replay.get("/").text


def test_only_the_configured_hosts_are_served(db):
    assert client(db).get("/api/summary").status_code == 200  # localhost: the default
    assert client(db, host="127.0.0.1").get("/healthz").status_code == 200
    rebound = client(db, host="attacker.example")  # DNS rebinding: their name, our address
    for path in ("/", "/api/summary", "/jobs", "/healthz"):
        answer = rebound.get(path)
        assert answer.status_code == 400 and "raid_key" not in answer.text, path
    served = client(db, host="ops.auction.example", WEB_ALLOWED_HOSTS="ops.auction.example")
    assert served.get("/api/summary").status_code == 200
    assert client(db, host="localhost", WEB_ALLOWED_HOSTS="ops.auction.example").get("/").status_code == 400


def test_failed_logins_are_throttled_per_client_and_logged(db, caplog):
    caplog.set_level(logging.INFO, logger="publisher.web")
    web = client(db, ADMIN_TOKEN=TOKEN, client_address=("203.0.113.7", 41000))
    answers = [web.post("/login", data={"token": f"guess-number-{i:04d}-of-many"}).status_code for i in range(12)]
    assert answers[0] == 401 and answers[-1] == 429
    # Throttled, the right token is refused too: guessing cannot go on at full speed.
    assert web.post("/login", data={"token": TOKEN, "next": "/"}).status_code == 429
    assert "set-cookie" not in web.post("/login", data={"token": TOKEN}).headers
    failures = [r.getMessage() for r in caplog.records if "login" in r.getMessage()]
    assert any("203.0.113.7" in m and "failed" in m for m in failures)
    assert all("guess-number" not in m for m in failures)  # what was typed is not logged
    neighbour = same_server(web, client=("198.51.100.9", 42000))
    assert log_in(neighbour).status_code == 303  # another client is not held back


def test_every_action_is_logged_with_its_session_and_client(db, caplog):
    caplog.set_level(logging.INFO, logger="publisher.web")
    job = failed_job(db, "a.jpg", "fetch: origin answered 404", "origin_404")
    web = client(db, ADMIN_TOKEN=TOKEN, client_address=("192.0.2.44", 43000))
    log_in(web)
    csrf = csrf_of(web, f"/jobs/{job}")
    assert web.post(f"/jobs/{job}/retry", data={"csrf": csrf}).status_code == 303
    assert web.post("/logout", data={"csrf": csrf}).status_code == 303
    lines = [r.getMessage() for r in caplog.records if r.name == "publisher.web"]
    login = next(m for m in lines if "logged in" in m)
    session = re.search(r"session (\w+)", login).group(1)
    retried = next(m for m in lines if "retry" in m and str(job) in m)
    assert session in retried and "192.0.2.44" in retried
    assert any("logged out" in m and session in m for m in lines)
    assert all(TOKEN not in m and csrf not in m for m in lines)


def test_multipart_forms_and_absurd_page_numbers_are_refused_with_a_4xx(db):
    job = failed_job(db, "a.jpg", "fetch: origin answered 404", "origin_404")
    web = client(db, ADMIN_TOKEN=TOKEN)
    as_file = web.post("/login", files={"token": ("token.txt", TOKEN.encode())})
    assert 400 <= as_file.status_code < 500
    assert 400 <= web.post("/login", files={"token": (None, TOKEN)}).status_code < 500
    log_in(web)
    csrf = csrf_of(web, f"/jobs/{job}")
    multipart = web.post(f"/jobs/{job}/retry", files={"csrf": ("csrf.txt", csrf.encode())})
    assert 400 <= multipart.status_code < 500
    assert status_of(db, job) == "failed"
    for page in ("99999999999999999999", "9" * 400, "²", "1e9"):
        answer = web.get(f"/jobs?page={page}")
        assert answer.status_code == 400, page


def test_every_answer_carries_the_security_headers(db):
    web = client(db, ADMIN_TOKEN=TOKEN)
    static = next(p for p in (Path(__file__).parents[2] / "publisher" / "web" / "static").iterdir() if p.is_file())
    for path in (f"/static/{static.name}", "/static/nothing-here.css", "/healthz", "/nowhere", "/jobs?page=x",
                 "/jobs/987654", "/login"):
        answer = web.get(path)
        assert "default-src" in answer.headers.get("content-security-policy", ""), path
        assert answer.headers.get("x-content-type-options") == "nosniff", path
    refused = client(db, host="elsewhere.example").get("/healthz")
    assert refused.headers.get("x-content-type-options") == "nosniff"


def test_the_message_after_a_bulk_retry_stays_small(db):
    files = [r["id"] for r in db.sql("INSERT INTO auction_files (raid_key) SELECT 'bulk-' || g || '.jpg' "
                                     "FROM generate_series(1, 240) g RETURNING id::text AS id")]
    db.sql("INSERT INTO publish_jobs (file_id, status, last_error, failure_reason) "
           "SELECT unnest(%s::uuid[]), 'failed', 'fetch: origin answered 404', 'origin_404'", (files,))
    web = client(db, ADMIN_TOKEN=TOKEN)
    log_in(web)
    done = web.post("/failures/retry", data={"csrf": csrf_of(web, "/"), "reason": "origin_404"})
    assert done.status_code == 303
    assert len(done.headers["set-cookie"]) < 2048  # browsers drop cookies past 4 KB
    assert db.sql("SELECT count(*) AS n FROM publish_jobs WHERE status = 'pending'") == [{"n": 240}]
    assert "240" in web.get("/").text


def test_an_internal_error_is_a_plain_500_with_the_security_headers(pg_server):
    empty = pg_server.create_database()  # reachable, but no schema: every read fails
    try:
        settings = load_web_settings({"DATABASE_URL": empty})
        app = create_app(settings)
        web = TestClient(app, base_url="http://localhost", raise_server_exceptions=False)
        broken = web.get("/api/summary")
        assert broken.status_code == 500
        assert broken.headers.get("x-content-type-options") == "nosniff"
        assert "default-src" in broken.headers.get("content-security-policy", "")
        assert "Traceback" not in broken.text and empty not in broken.text
        app.state.database.close()
    finally:
        pg_server.drop_database(empty)


def test_behind_a_trusted_proxy_logins_are_throttled_per_forwarded_client_not_per_proxy(make_stack):
    # The real server (uvicorn as publisher-web starts it), behind a proxy on this host: the
    # address FORWARDED_ALLOW_IPS trusts, as uvicorn reads it from the environment.
    stack = make_stack(ADMIN_TOKEN=TOKEN, FORWARDED_ALLOW_IPS="127.0.0.1")
    url = stack.start_web()

    def login(client: str, token: str) -> int:
        request = urllib.request.Request(f"{url}/login", data=urllib.parse.urlencode({"token": token}).encode(),
                                         headers={"X-Forwarded-For": client, "Host": "localhost"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status
        except urllib.error.HTTPError as e:
            return e.code

    guesser, colleague = "198.51.100.23", "203.0.113.61"
    answers = [login(guesser, f"wrong-guess-{i}") for i in range(7)]
    assert answers[0] == 401 and answers[-1] == 429
    # The colleague comes through the same proxy: not held back by the guesser's failures.
    assert login(colleague, "still-a-wrong-token") == 401
    assert "198.51.100.23" in stack.web.log()  # the log names the real client

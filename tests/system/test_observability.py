"""Metrics, health endpoints and JSON logs of a running system (real Postgres,
SeaweedFS, origin, listener and two worker processes), read the way Prometheus,
a platform's probes and a log shipper read them."""

import json
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.ports import free_port, free_ports_in_a_row, wait_until
from tests.support.stack import TOKEN


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(url) -> dict:
    """{(name, frozenset(labels)): value} of a /metrics page."""
    status, text = get(url)
    assert status == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(metrics, name, **labels):
    return sum(v for (n, ls), v in metrics.items() if n == name and set(labels.items()) <= ls)


def published_objects(variant: dict) -> list[dict]:
    """The objects of one published variant: itself, or one per format where it lists formats."""
    return list(variant["formats"].values()) if "formats" in variant else [variant]


@pytest.fixture(scope="module")
def observed(pg_server, s3, origin, tmp_path_factory):
    from publisher.settings.ops import METRICS_FOLDER
    from tests.support.stack import Stack

    tmp = tmp_path_factory.mktemp("observed")
    metrics_dir = tmp / METRICS_FOLDER  # the workers' metrics files live in their TMPDIR (the stack's tmp)
    stale = metrics_dir / "999999999-42"  # a run whose dramatiq process is gone
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"old counts")
    ports = dict(LISTENER_HTTP_PORT=free_port(), WORKER_METRICS_PORT=free_ports_in_a_row(3))
    s = Stack(pg_server, s3, origin, tmp, LOG_FORMAT="json", METRICS_INTERVAL="0.5", VARIANT_QUALITY="auto", **ports)
    s.ports = {k: int(v) for k, v in ports.items()}
    s.ports["WORKER_HEALTH_PORT"] = s.ports["WORKER_METRICS_PORT"] + 1  # process i on this + i
    s.stale_metrics = stale
    s.start_workers(processes=2, threads=2)
    s.start_listener()
    yield s
    s.stop()


def url(stack, port_name, path):
    return f"http://127.0.0.1:{stack.ports[port_name]}{path}"


def test_worker_metrics_cover_every_process_and_stage(observed):
    jobs = [observed.publish(key) for key in ("exif-orientation-1.jpg", "png-alpha.png", "progressive.jpg",
                                              "cmyk.jpg")]
    for job in jobs:
        assert observed.wait_for(job)["status"] == "completed"
    metrics_url = url(observed, "WORKER_METRICS_PORT", "/metrics")

    def all_counted():
        m = samples(metrics_url)
        return m if value(m, "publisher_step_seconds_count", stage="upload", outcome="done") >= len(jobs) else None

    m = wait_until(all_counted, 30, "the upload steps to be counted")
    # Dramatiq's own metrics, summed over both worker processes.
    assert value(m, "dramatiq_messages_total", actor_name="fetch") == len(jobs)
    assert value(m, "dramatiq_messages_total", actor_name="upload") == len(jobs)
    # Our phases: each job downloaded and decoded once, then every object published encoded and uploaded.
    objects = [o for j in jobs for v in observed.job(j)["variants"].values() for o in published_objects(v)]
    assert len(objects) >= 2 * len(jobs)
    assert value(m, "publisher_phase_seconds_count", phase="download") == len(jobs)
    assert value(m, "publisher_phase_seconds_count", phase="decode_resize") == len(jobs)
    # At auto's quality targets, each object was searched for: at least one encode and score each.
    assert value(m, "publisher_phase_seconds_count", phase="encode") >= len(objects)
    assert value(m, "publisher_phase_seconds_count", phase="score") >= len(objects)
    assert value(m, "publisher_phase_seconds_count", phase="upload") == len(objects)
    assert value(m, "publisher_queue_lag_seconds_count") == len(jobs)
    # Bytes in are the originals' sizes; bytes out the published variants'.
    originals = sum((observed.origin.root / k).stat().st_size for k in
                    ("exif-orientation-1.jpg", "png-alpha.png", "progressive.jpg", "cmyk.jpg"))
    assert value(m, "publisher_bytes_total", direction="in") == originals
    assert value(m, "publisher_bytes_total", direction="out") == sum(o["bytes"] for o in objects)
    # Each variant made: its bytes, and the score it was published at, per variant and format.
    for name in ("thumb", "display"):
        made = [v["formats"]["webp"] for j in jobs for n, v in observed.job(j)["variants"].items() if n == name]
        assert value(m, "publisher_variant_bytes_count", variant=name, format="webp") == len(jobs)
        assert value(m, "publisher_variant_bytes_sum", variant=name, format="webp") == sum(o["bytes"] for o in made)
        assert value(m, "publisher_variant_score_count", variant=name, format="webp") == len(jobs)
        assert value(m, "publisher_variant_score_sum", variant=name, format="webp") == pytest.approx(
            sum(o["score"] for o in made), abs=0.01 * len(jobs))


def test_failures_are_counted_by_reason(observed):
    job = observed.publish("no-such-file.jpg")
    assert observed.wait_for(job)["status"] == "failed"
    metrics_url = url(observed, "WORKER_METRICS_PORT", "/metrics")
    wait_until(lambda: value(samples(metrics_url), "publisher_step_failures_total",
                             stage="fetch", reason="origin_404", outcome="failed") == 1,
               30, "the failure to be counted")


def test_metrics_of_an_earlier_run_are_wiped_at_start(observed):
    assert not observed.stale_metrics.exists()


def test_listener_gauges_follow_the_job_table(observed):
    assert observed.wait_for(observed.publish("prophoto.jpg"))["status"] == "completed"
    metrics_url = url(observed, "LISTENER_HTTP_PORT", "/metrics")

    def matches():
        counts = {r["status"]: r["n"] for r in observed.sql(
            "SELECT status, count(*)::int AS n FROM publish_jobs GROUP BY status")}
        completed_last_hour = observed.sql(
            "SELECT count(*)::int AS n FROM publish_jobs "
            "WHERE status = 'completed' AND completed_at > now() - interval '1 hour'")[0]["n"]
        m = samples(metrics_url)
        return all(value(m, "publisher_jobs", status=s) == counts.get(s, 0)
                   for s in ("pending", "queued", "processing", "failed")) and \
            value(m, "publisher_jobs_last_hour", status="completed") == completed_last_hour and \
            value(m, "publisher_job_processing_seconds_avg") > 0 and completed_last_hour

    assert wait_until(matches, 30, "the listener's gauges to match the table") >= 1


def test_health_and_readiness_of_listener_and_each_worker_process(observed):
    health_port = observed.ports["WORKER_HEALTH_PORT"]
    listener = {"database": "ok", "s3": "ok"}
    # A worker also needs room in its scratch directory (SCRATCH_MIN_FREE_MB).
    for port, checks in ((observed.ports["LISTENER_HTTP_PORT"], listener),
                         (health_port, {**listener, "scratch": "ok"}),
                         (health_port + 1, {**listener, "scratch": "ok"})):
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        status, body = get(f"http://127.0.0.1:{port}/readyz")
        assert status == 200, body
        assert json.loads(body)["checks"] == checks


def test_readiness_fails_and_names_s3_when_the_bucket_is_unreachable(make_stack):
    port = free_port()
    stack = make_stack(B2_ENDPOINT=f"http://127.0.0.1:{free_port()}", LISTENER_HTTP_PORT=port,
                       MAINTENANCE_INTERVAL=0)
    stack.start_listener()
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: get(base + "/healthz")[0] == 200, 30, "the listener's /healthz")
    status, body = get(base + "/readyz")
    answer = json.loads(body)
    assert status == 503 and answer["checks"]["database"] == "ok" and answer["checks"]["s3"] != "ok"
    assert stack.s3.secret_key not in body


def test_json_logs_have_one_line_per_job_event(observed):
    job = observed.publish("exif-orientation-3.jpg")
    row = observed.wait_for(job)
    assert row["status"] == "completed"

    def events():
        found = {}
        for line in observed.logs().splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            if entry.get("job_id") == job:
                found[(entry["stage"], entry["event"])] = entry
        return found if ("upload", "done") in found else None

    found = wait_until(events, 30, "the job's log lines")
    for stage in ("fetch", "variant", "upload"):
        started, done = found[(stage, "started")], found[(stage, "done")]
        assert started["file_id"] == done["file_id"] == str(row["file_id"])
        assert isinstance(done["duration_s"], float) and done["level"] == "info"
    assert TOKEN not in observed.logs()

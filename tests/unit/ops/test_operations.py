"""Unit tests of the operations code's pure logic: log formats, settings,
metrics bookkeeping, the health server's answers, .env parsing."""

import io
import json
import logging
import os
import urllib.error
import urllib.request

import pytest

from devstack.run import read_env_file
from publisher import logs, telemetry
from publisher.observability import prometheus as metrics
from publisher.ops.admin import format_status
from publisher.settings.job import ConfigError, load_settings
from publisher.errors import PermanentError, StaleAttempt, TransientError
from publisher.jobs.handoff import Fetched, ImagingFacts, Rendered, Source, StagedFile
from publisher.observability.health import HealthServer
from publisher.settings.ops import load_ops_settings

SECRET = "raid-token-very-secret-1234"
REQUIRED = {
    "DATABASE_URL": "postgresql://u:dbpass-9876@127.0.0.1/db", "RAID_PUB_ENDPOINT": "https://raid/pub",
    "RAID_PUBLISHER_SECRET": SECRET, "B2_KEY_ID": "k", "B2_APP_KEY": "app-key-secret-5555", "B2_BUCKET": "b",
    "B2_ENDPOINT": "http://s3:8333", "B2_REGION": "us-east-1", "CDN_BASE_URL": "https://cdn.example",
}


def _logger_with(stream, fmt):
    logger = logging.getLogger(f"test.ops.{fmt}")
    logger.handlers[:] = []
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter() if fmt == "json" else logging.Formatter("%(message)s"))
    handler.addFilter(logs.RedactingFilter(logs.Redactor([SECRET])))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger


def test_json_log_line_carries_job_fields_and_no_secret():
    out = io.StringIO()
    log = _logger_with(out, "json")
    log.warning("job=%s stage=%s will retry: origin refused Bearer %s", 7, "fetch", SECRET,
                extra=logs.job_fields(7, "f-1", "fetch", 1.23456, event="retry", error=f"token {SECRET}"))
    entry = json.loads(out.getvalue())
    assert entry["level"] == "warning"
    assert (entry["job_id"], entry["file_id"], entry["stage"], entry["duration_s"], entry["event"]) == (
        7, "f-1", "fetch", 1.235, "retry")
    assert SECRET not in out.getvalue()
    assert "[redacted]" in entry["message"] and "[redacted]" in entry["error"]


def test_json_log_keeps_exceptions_redacted():
    out = io.StringIO()
    log = _logger_with(out, "json")
    try:
        raise RuntimeError(f"connect to postgresql://u:{SECRET}@db failed")
    except RuntimeError:
        log.exception("boom")
    entry = json.loads(out.getvalue())
    assert "RuntimeError" in entry["exception"] and SECRET not in out.getvalue()


def test_log_format_is_validated():
    assert load_settings({**REQUIRED, "LOG_FORMAT": "json"}).log_format == "json"
    assert load_settings(REQUIRED).log_format == "text"
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_settings({**REQUIRED, "LOG_FORMAT": "xml"})


def test_ops_settings_defaults_and_errors_name_each_variable():
    ops = load_ops_settings({})
    assert (ops.http_host, ops.listener_port, ops.worker_metrics_port, ops.worker_health_port) == (
        "127.0.0.1", 9190, 9191, 9192)
    assert (ops.completed_job_retention_days, ops.deleted_file_retention_days) == (90, 30)
    with pytest.raises(ConfigError) as e:
        load_ops_settings({"LISTENER_HTTP_PORT": "70000", "MAINTENANCE_INTERVAL": "soon"})
    assert "LISTENER_HTTP_PORT" in str(e.value) and "MAINTENANCE_INTERVAL" in str(e.value)


def test_stale_metric_runs_are_wiped_and_live_ones_kept(tmp_path):
    mine = tmp_path / metrics.run_id(os.getpid())
    dead = tmp_path / "999999999-5"  # above pid_max: no such process
    reused = tmp_path / f"{os.getpid()}-1"  # this pid, but an earlier process (pid 1 in a restarted container)
    other = tmp_path / "notes"  # not a run directory: left alone
    for d in (mine, dead, reused, other):
        d.mkdir()
        (d / "counter_1.db").write_bytes(b"x")
    removed = metrics.wipe_stale_runs(str(tmp_path), keep=str(tmp_path / "123"))
    assert sorted(removed) == sorted([str(dead), str(reused)])
    assert mine.exists() and other.exists() and not dead.exists() and not reused.exists()
    assert "-" in mine.name  # Linux: the start time is part of the name


def test_metric_hooks_are_no_ops_until_set_up_then_count(monkeypatch):
    monkeypatch.setattr(telemetry, "_metrics", None)
    telemetry.step_finished("fetch", "done", 0.5, {"in": 10})  # nothing set up: no error
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    telemetry.install(metrics.WorkerMetrics(registry))
    fetched = Fetched(Source(file="source", bytes=1000, format="jpeg", width=4, height=3))
    staged = [StagedFile(file=f"{n}.webp", width=1, height=1, bytes=n, sha256="0", content_type="image/webp")
              for n in (30, 12)]
    rendered = Rendered({"a": {"webp": staged[0]}, "b": {"webp": staged[1]}},
                        ImagingFacts(recipe="r", placeholder=None, dominant_color=None))
    telemetry.step_finished("fetch", "done", 0.5, fetched.traffic())
    telemetry.step_finished("variant", "done", 0.5, rendered.traffic())
    telemetry.step_failed("fetch", PermissionError("no"), "failed")
    with telemetry.phase("download"):
        pass
    value = registry.get_sample_value
    assert value("publisher_bytes_total", {"direction": "in"}) == 1000
    assert value("publisher_bytes_total", {"direction": "out"}) == 42
    assert value("publisher_step_failures_total",
                 {"stage": "fetch", "reason": "PermissionError", "outcome": "failed"}) == 1
    assert value("publisher_phase_seconds_count", {"phase": "download"}) == 1


@pytest.mark.parametrize("error, reason", [
    (PermanentError("origin answered 404 Not Found for key 'a.jpg'", "origin_404"), "origin_404"),
    (TransientError("origin timed out for key 'a.jpg'", "origin_timeout"), "origin_timeout"),
    (StaleAttempt("job 7 was taken over by a newer attempt"), "stale_attempt"),
    (PermanentError("refusing to send the token to elsewhere.example"), "PermanentError"),
    (ConnectionResetError("peer reset"), "ConnectionResetError"),
])
def test_a_failure_is_counted_under_the_reason_it_was_raised_with_else_its_class(error, reason):
    assert telemetry.failure_reason(error) == reason


def test_a_reason_survives_pickling_as_an_exception_crossing_processes_would():
    import pickle

    again = pickle.loads(pickle.dumps(TransientError("origin answered 503", "origin_503")))
    assert (str(again), again.reason) == ("origin answered 503", "origin_503")


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_health_server_answers_and_names_failing_check_without_secret():
    state = {"alive": None}

    def bad_s3():
        raise ConnectionError(f"refused with key {SECRET}")

    server = HealthServer("127.0.0.1", 0, alive=lambda: state["alive"], ready={"database": lambda: None, "s3": bad_s3},
                          metrics=lambda: (b"m 1\n", "text/plain"), redact=logs.Redactor([SECRET])).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert _get(base + "/healthz")[0] == 200
        status, body = _get(base + "/readyz")
        answer = json.loads(body)
        assert status == 503 and answer["checks"]["database"] == "ok"
        assert answer["checks"]["s3"].startswith("ConnectionError") and SECRET not in body.decode()
        assert _get(base + "/metrics") == (200, b"m 1\n")
        state["alive"] = "the loop has not turned for 300s"
        status, body = _get(base + "/healthz")
        assert status == 503 and b"300s" in body
        assert _get(base + "/nope")[0] == 404
    finally:
        server.stop()


def test_status_text_shows_what_on_call_needs():
    from datetime import datetime, timezone

    text = format_status({
        "jobs": {"pending": 3, "failed": 1, "completed": 9}, "broker": {"done": 4},
        "oldest_pending": {"id": 12, "file_id": "f-12", "age_seconds": 4000.0},
        "oldest_pending_seconds": 4000.0,
        "last_hour": {"completed": 9, "failed": 1, "avg_processing_seconds": 2.5, "avg_total_seconds": 3.0},
        "last_failures": [{"id": 5, "file_id": "f-5", "updated_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
                           "retry_count": 5, "max_retries": 5, "stage": "fetch", "last_error": "fetch: 404"}],
    })
    assert "pending     3" in text and "error rate 10.0%" in text and "2.50s" in text
    assert "oldest pending job: 12 (file f-12), waiting 66m" in text
    assert "job 5 file f-5" in text and "fetch: 404" in text


def test_env_file_parsing(tmp_path):
    path = tmp_path / ".env"
    path.write_text("# comment\n\nDATABASE_URL=postgresql://x/y\nexport LOG_LEVEL='debug'\nB2_BUCKET=\"b\"\n")
    assert read_env_file(path) == {"DATABASE_URL": "postgresql://x/y", "LOG_LEVEL": "debug", "B2_BUCKET": "b"}


class _FakeDb:
    """Answers the one question Maintenance asks before choosing its parts."""

    def __init__(self, pg_cron: bool):
        self.pg_cron = pg_cron

    def transaction(self):
        import contextlib

        fake = self

        class Cursor:
            def execute(self, statement, params=None):
                self.statement = statement

            def fetchone(self):
                return {"installed": fake.pg_cron, "n": 2 if fake.pg_cron else 0}

        return contextlib.nullcontext(Cursor())


@pytest.mark.parametrize("pg_cron", [True, False])
def test_maintenance_leaves_the_database_side_to_pg_cron_when_it_is_scheduled(pg_cron, monkeypatch):
    from publisher.ops.maintenance import Maintenance

    m = Maintenance(_FakeDb(pg_cron), storage=None, settings=None, ops=load_ops_settings({}))
    ran = []
    monkeypatch.setattr(m, "purge_completed_jobs", lambda: ran.append("jobs") or 0)
    monkeypatch.setattr(m, "purge_broker_messages", lambda: ran.append("broker") or 0)
    monkeypatch.setattr(m, "purge_deleted_files", lambda: ran.append("files") or 0)
    monkeypatch.setattr(m, "forget_lost_hosts", lambda: ran.append("hosts") or 0)
    m.run()
    assert ran == (["files", "hosts"] if pg_cron else ["jobs", "broker", "files", "hosts"])


def test_one_failing_maintenance_part_does_not_stop_the_others(monkeypatch):
    from publisher.ops.maintenance import Maintenance, MaintenanceError

    m = Maintenance(_FakeDb(False), storage=None, settings=None, ops=load_ops_settings({}))
    ran = []

    def broken():
        raise ConnectionError("bucket away")

    monkeypatch.setattr(m, "purge_completed_jobs", broken)
    monkeypatch.setattr(m, "purge_broker_messages", lambda: ran.append("broker") or 3)
    monkeypatch.setattr(m, "purge_deleted_files", lambda: ran.append("files") or 1)
    monkeypatch.setattr(m, "forget_lost_hosts", lambda: ran.append("hosts") or 0)
    with pytest.raises(MaintenanceError, match="completed_jobs"):
        m.run()
    assert ran == ["broker", "files", "hosts"]

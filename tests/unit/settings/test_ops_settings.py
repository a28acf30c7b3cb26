"""The operating settings, and the log format among a job's settings."""

import pytest

from publisher.logs import Redactor
from publisher.settings.job import ConfigError, load_settings
from publisher.settings.ops import load_ops_settings

SECRET = "raid-token-very-secret-1234"
REQUIRED = {
    "DATABASE_URL": "postgresql://u:dbpass-9876@127.0.0.1/db", "RAID_PUB_ENDPOINT": "https://raid/pub",
    "RAID_PUBLISHER_SECRET": SECRET, "B2_KEY_ID": "k", "B2_APP_KEY": "app-key-secret-5555", "B2_BUCKET": "b",
    "B2_ENDPOINT": "http://s3:8333", "B2_REGION": "us-east-1", "CDN_BASE_URL": "https://cdn.example",
}


def test_log_format_is_validated():
    assert load_settings({**REQUIRED, "LOG_FORMAT": "json"}).log_format == "json"
    assert load_settings(REQUIRED).log_format == "text"
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_settings({**REQUIRED, "LOG_FORMAT": "xml"})


def test_ops_settings_defaults_and_errors_name_each_variable():
    ops = load_ops_settings({})
    assert (ops.http_host, ops.listener_port, ops.worker_metrics_port, ops.worker_health_port) == (
        "127.0.0.1", 9190, 9191, 9192)
    with pytest.raises(ConfigError) as e:
        load_ops_settings({"LISTENER_HTTP_PORT": "70000", "WORKER_METRICS_PORT": "soon"})
    assert "LISTENER_HTTP_PORT" in str(e.value) and "WORKER_METRICS_PORT" in str(e.value)


def test_worker_health_endpoints_follow_the_metrics_port_and_are_off_with_it():
    assert load_ops_settings({"WORKER_METRICS_PORT": "8000"}).worker_health_port == 8001
    assert load_ops_settings({"WORKER_METRICS_PORT": "0"}).worker_health_port == 0


@pytest.mark.parametrize("path", ["/services/T02ABCDE/B07FGHIJ/kLmNoPqRsTuVwXyZ0123", "/k7"])
def test_the_listener_redacts_the_webhook_urls_path_wherever_a_library_quotes_it(path):
    ops = load_ops_settings({"PUBLISH_WEBHOOK_URL": f"https://hooks.example{path}", "PUBLISH_WEBHOOK_SECRET": "s"})
    redact = Redactor(ops.secrets)
    quoted = f"Max retries exceeded with url: {path} (Caused by timeout)"
    assert redact(quoted) == "Max retries exceeded with url: [redacted] (Caused by timeout)"
    assert redact(f"POST https://hooks.example{path.replace('/', '%2F')}") == "POST https://hooks.example[redacted]"


@pytest.mark.parametrize("scratch", ["{tmp}/media-publisher", "{tmp}/scratch", "/var/lib/worker/scratch"])
def test_the_workers_metrics_files_are_never_on_the_scratch_disk(monkeypatch, tmp_path, scratch):
    # prometheus_client writes them through mmap: on a full disk the write kills the worker
    # (SIGBUS), where a full scratch disk must only delay jobs.
    import tempfile
    from pathlib import Path

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    scratch_dir = Path(scratch.format(tmp=tmp_path))
    job = load_settings({**REQUIRED, "SCRATCH_DIR": str(scratch_dir)})
    metrics = Path(load_ops_settings({"SCRATCH_DIR": str(scratch_dir)}).worker_metrics_dir)
    assert Path(job.scratch_dir) == scratch_dir
    assert not metrics.is_relative_to(scratch_dir)

"""Configuration is checked at start: one message names every problem."""

import subprocess
import sys

import pytest

from devstack.procs import BIN, ROOT
from publisher.config import ConfigError, database_dsn, load_settings
from publisher.storage import endpoint_parts

VALID = {
    "DATABASE_URL": "postgresql://publisher:pw@127.0.0.1:5432/auctions",
    "RAID_PUB_ENDPOINT": "https://raid.internal/pub",
    "RAID_PUBLISHER_SECRET": "token",
    "B2_KEY_ID": "key-id",
    "B2_APP_KEY": "app-key",
    "B2_BUCKET": "media",
    "B2_ENDPOINT": "s3.us-west-004.backblazeb2.com",
    "B2_REGION": "us-west-004",
    "CDN_BASE_URL": "https://media.example.com/",
}


def test_defaults():
    s = load_settings(VALID)
    assert s.worker_poll_interval_ms == 15000
    assert s.max_retries == 5
    assert s.log_level == "info"
    assert s.concurrency == 3
    assert s.variants == (("thumb", 400), ("display", 1600))
    assert s.cdn_base_url == "https://media.example.com"


def test_every_problem_is_named_at_once():
    env = dict(VALID, MAX_RETRIES="many", B2_ENDPOINT="ftp://x", LOG_LEVEL="loud")
    del env["B2_BUCKET"], env["RAID_PUBLISHER_SECRET"]
    with pytest.raises(ConfigError) as e:
        load_settings(env)
    message = str(e.value)
    for name in ("MAX_RETRIES", "B2_ENDPOINT", "LOG_LEVEL", "B2_BUCKET", "RAID_PUBLISHER_SECRET"):
        assert name in message
    assert "missing (required)" in message
    assert "DATABASE_URL" not in message and "CDN_BASE_URL" not in message


@pytest.mark.parametrize("url, tls", [
    ("postgresql://u:p@db.example.com/x", True),
    ("postgresql://u:p@db.example.com/x?sslmode=disable", False),
    ("postgresql://u:p@localhost/x", False),
    ("postgresql://u:p@127.0.0.1:5432/x", False),
    ("postgresql://u@/x?host=/var/run/postgresql", False),
])
def test_remote_database_gets_tls_unless_told(url, tls):
    assert ("sslmode=require" in database_dsn(url)) is tls


@pytest.mark.parametrize("endpoint, expected", [
    ("s3.us-west-004.backblazeb2.com", ("s3.us-west-004.backblazeb2.com", True)),
    ("minio.local:9000", ("minio.local:9000", True)),
    ("http://127.0.0.1:8333", ("127.0.0.1:8333", False)),
    ("https://s3.example.com", ("s3.example.com", True)),
])
def test_b2_endpoint_forms(endpoint, expected):
    assert endpoint_parts(endpoint) == expected


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "listener"],
    [str(BIN / "dramatiq"), "actors", "--processes", "1", "--threads", "1"],
])
def test_processes_refuse_a_bad_environment_with_one_clear_message(command):
    env = {"PATH": "/usr/bin:/bin", "B2_ENDPOINT": "ftp://nowhere", "MAX_RETRIES": "-1",
           "RAID_PUBLISHER_SECRET": "hunter2-secret"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    for name in ("DATABASE_URL", "RAID_PUB_ENDPOINT", "B2_KEY_ID", "B2_APP_KEY", "B2_BUCKET", "B2_REGION",
                 "CDN_BASE_URL", "B2_ENDPOINT", "MAX_RETRIES"):
        assert name in output, name
    assert "Traceback" not in output
    assert "hunter2-secret" not in output

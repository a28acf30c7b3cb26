"""Configuration is checked at start: one message names every problem."""

import subprocess
import sys

import pytest

from devstack.procs import BIN, ROOT
from publisher.clients.storage import endpoint_parts
from publisher.settings.job import ConfigError, database_dsn, load_settings

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


def test_unset_variables_take_the_documented_defaults():
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
def test_a_b2_endpoint_may_be_a_bare_host_or_a_url(endpoint, expected):
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


@pytest.mark.parametrize("endpoint", ["http://raid.internal/pub", "http://10.0.0.7:8080/pub", "http://[2001:db8::1]/x"])
def test_a_cleartext_raid_endpoint_off_this_machine_is_refused_unless_allowed(endpoint):
    with pytest.raises(ConfigError, match="RAID_PUB_ENDPOINT: .*token would cross the network in clear text"):
        load_settings(dict(VALID, RAID_PUB_ENDPOINT=endpoint))
    allowed = load_settings(dict(VALID, RAID_PUB_ENDPOINT=endpoint, RAID_ALLOW_PLAIN_HTTP="true"))
    assert allowed.raid_pub_endpoint == endpoint


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:8080/raid", "http://localhost/raid", "http://[::1]:81/r",
                                      "https://raid.internal/pub"])
def test_loopback_or_https_raid_endpoints_need_no_permission(endpoint):
    assert load_settings(dict(VALID, RAID_PUB_ENDPOINT=endpoint)).raid_pub_endpoint == endpoint


def test_the_download_deadline_is_the_byte_limit_at_the_slowest_rate_waited_for():
    from publisher.settings import fixed

    assert fixed.ORIGIN_DOWNLOAD_TIMEOUT >= fixed.MAX_SOURCE_BYTES / fixed.MIN_DOWNLOAD_BYTES_PER_SECOND
    assert fixed.ORIGIN_DOWNLOAD_TIMEOUT > fixed.ORIGIN_READ_TIMEOUT > fixed.ORIGIN_CONNECT_TIMEOUT > 0


def test_the_object_prefix_is_plain_path_segments_none_named_like_a_file():
    # The database publishes no key below a folder named like a file id (publisher_key_in_folder,
    # sql/011_retention.sql): a prefix holding one would publish nothing.
    import re

    from publisher.settings import fixed

    assert re.fullmatch(r"(?:[A-Za-z0-9_-][A-Za-z0-9._-]*/)*", fixed.OBJECT_PREFIX)
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", fixed.OBJECT_PREFIX, re.I)


def test_a_scratch_dir_that_cannot_be_used_is_named(tmp_path):
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    for bad in (str(a_file), str(a_file / "below"), "relative/scratch"):
        with pytest.raises(ConfigError, match="SCRATCH_DIR"):
            load_settings(dict(VALID, SCRATCH_DIR=bad))
    fresh = tmp_path / "new" / "scratch"
    assert load_settings(dict(VALID, SCRATCH_DIR=str(fresh))).scratch_dir == str(fresh)


def test_the_worker_refuses_a_bad_scratch_dir_with_one_message_and_status_2(tmp_path):
    a_file = tmp_path / "occupied"
    a_file.write_text("x")
    env = dict(VALID, PATH="/usr/bin:/bin", SCRATCH_DIR=str(a_file / "scratch"),
               DATABASE_URL="postgresql://postgres@127.0.0.1:5432/postgres", RAID_PUBLISHER_SECRET="hunter2-secret")
    result = subprocess.run([sys.executable, "-c", "import actors"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "SCRATCH_DIR" in output and "Traceback" not in output


def test_a_cleartext_raid_endpoint_is_named_with_the_other_problems():
    with pytest.raises(ConfigError) as e:
        load_settings(dict(VALID, RAID_PUB_ENDPOINT="http://raid.internal/pub", MAX_RETRIES="many"))
    assert "MAX_RETRIES" in str(e.value) and "clear text" in str(e.value)


def test_the_scratch_free_space_floor_has_a_default_and_must_be_a_size():
    assert load_settings(VALID).scratch_min_free_mb == 1024
    assert load_settings(dict(VALID, SCRATCH_MIN_FREE_MB="64")).scratch_min_free_mb == 64
    with pytest.raises(ConfigError, match="SCRATCH_MIN_FREE_MB"):
        load_settings(dict(VALID, SCRATCH_MIN_FREE_MB="-1"))

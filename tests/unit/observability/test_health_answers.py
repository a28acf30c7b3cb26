"""What the health server answers, with no secret in it."""

import json
import urllib.error
import urllib.request

import pytest

from publisher import logs
from publisher.observability.health import HealthServer

SECRET = "raid-token-very-secret-1234"


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


def test_a_worker_is_not_ready_below_the_free_space_floor_of_its_scratch(tmp_path):
    from publisher.jobs.scratch import Scratch
    from publisher.observability.worker_health import scratch_space_check

    scratch = Scratch(str(tmp_path))
    scratch_space_check(scratch, 1)()  # a byte is free
    free = scratch.free_space().bytes
    with pytest.raises(RuntimeError, match="SCRATCH_MIN_FREE_MB"):
        scratch_space_check(scratch, free + 1024 ** 4)()

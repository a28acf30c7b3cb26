"""The module paths operators, compose health checks and scripts used before the
package was layered still run the same tools (publisher/ops/)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("old, tool", [
    ("publisher.admin", "publisher.ops.admin"),
    ("publisher.contact_sheet", "publisher.ops.contact_sheet"),
    ("publisher.republish", "publisher.ops.republish"),
])
def test_an_old_module_path_runs_the_tool_it_was(old, tool):
    def help_of(module):
        done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert help_of(old) == help_of(tool)


def test_the_old_http_probe_path_passes_a_healthy_endpoint_and_fails_one_that_does_not_answer():
    # The compose health checks run `python -m publisher.probe URL`.
    from publisher.observability.health import HealthServer

    def probe(url):
        done = subprocess.run([sys.executable, "-m", "publisher.probe", url], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode

    server = HealthServer("127.0.0.1", 0).start()
    try:
        assert probe(f"http://127.0.0.1:{server.port}/healthz") == 0
    finally:
        server.stop()
    assert probe("http://127.0.0.1:9/healthz") == 1


def test_the_console_script_is_the_admin_tool():
    done = subprocess.run([Path(sys.executable).parent / "publisher-admin", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr

"""The entry points operators, the compose health checks and scripts run: the
console script and the modules under publisher/ops/."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("tool", ["publisher.ops.admin", "publisher.ops.contact_sheet", "publisher.ops.republish"])
def test_an_operator_tool_runs_as_a_module(tool):
    done = subprocess.run([sys.executable, "-m", tool, "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr


def test_the_http_probe_passes_a_healthy_endpoint_and_fails_one_that_does_not_answer():
    # The compose health checks run `python -m publisher.ops.http_probe URL`.
    from publisher.observability.health import HealthServer

    def probe(url):
        done = subprocess.run([sys.executable, "-m", "publisher.ops.http_probe", url], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode

    server = HealthServer("127.0.0.1", 0).start()
    try:
        assert probe(f"http://127.0.0.1:{server.port}/healthz") == 0
    finally:
        server.stop()
    assert probe("http://127.0.0.1:9/healthz") == 1


def test_the_console_script_and_the_module_are_the_same_admin_tool():
    def help_of(command):
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert help_of([Path(sys.executable).parent / "publisher-admin", "--help"]) == \
        help_of([sys.executable, "-m", "publisher.ops.admin", "--help"])


def test_every_module_the_deployment_files_and_docs_run_exists():
    import importlib.util
    import re

    files = [ROOT / "docker-compose.yml", ROOT / "Procfile", ROOT / "Makefile", ROOT / "README.md",
             *ROOT.glob("docs/*.md"), *(p for p in (ROOT / "deploy").rglob("*") if p.is_file())]
    run = re.compile(r"""python3?"?,?\s+"?-m"?,?\s+"?([A-Za-z_]\w*(?:\.\w+)*)""")
    named = {m for f in files for m in run.findall(f.read_text(errors="replace"))}
    assert {"listener", "publisher.ops.http_probe", "publisher.ops.admin"} <= named
    ours = sorted(m for m in named if m.split(".")[0] in ("publisher", "actors", "listener", "bench", "devstack"))
    assert [m for m in ours if importlib.util.find_spec(m) is None] == []

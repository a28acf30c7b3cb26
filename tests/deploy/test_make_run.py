"""`make run` on a machine with no configuration: `python -m devstack.run` in a
clean environment brings everything up, publishes the samples and exits 0
with the CDN URLs and a contact sheet. Once with the machine's PostgreSQL,
once with the pip-installed one (FORCE_EMBEDDED_PG=1), as on a laptop."""

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import pyvips

from devstack import procs
from devstack.ports import wait_until
from devstack.run import DEFAULT_SAMPLES

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("postgres", ["machine", "embedded"])
def test_make_run_without_configuration_publishes_the_samples(tmp_path, postgres):
    demo_dir = tmp_path / "demo"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DEMO_DIR": str(demo_dir), "DEMO_TIMEOUT": "240",
           "ENV_FILE": str(tmp_path / "no.env")}  # a developer's own .env must not turn this into the service
    if postgres == "embedded":
        env["FORCE_EMBEDDED_PG"] = "1"
    done = subprocess.run([sys.executable, "-m", "devstack.run"], env=env, cwd=procs.ROOT,
                          capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert f"published {len(DEFAULT_SAMPLES)} of {len(DEFAULT_SAMPLES)}" in out
    assert ("pip-installed" if postgres == "embedded" else "this machine") in out

    urls = re.findall(r"^  (\S+) (thumb|display) (\d+)x(\d+): (http://127\.0\.0\.1:\d+/\S+)$", out, re.M)
    assert sorted({u[0] for u in urls}) == sorted(DEFAULT_SAMPLES)
    assert len(urls) == 2 * len(DEFAULT_SAMPLES)
    for _, _, _, _, url in urls:
        assert re.search(r"/media/[0-9a-f-]{36}/(thumb|display)-[0-9a-f]{16}\.webp$", url), url

    sheet = Path(re.search(r"^contact sheet: (.+)$", out, re.M).group(1))
    assert sheet.is_file() and demo_dir in sheet.parents
    # The sheet shows every variant from a copy beside it (the demo's bucket is gone after exit),
    # read back from the bucket at the size printed.
    # (inline data: images are the placeholders, not files)
    shown = [sheet.parent / src for src in re.findall(r'<img[^>]* src="([^"]+)"', sheet.read_text())
             if not src.startswith("data:")]
    sizes = []
    for path in shown:
        assert path.is_file(), path
        if path.suffix == ".webp":
            image = pyvips.Image.new_from_file(str(path))
            sizes.append((image.width, image.height))
    for _, _, width, height, _ in urls:
        assert (int(width), int(height)) in sizes
        sizes.remove((int(width), int(height)))


def test_make_run_with_configuration_runs_the_service_until_ctrl_c(make_stack, tmp_path):
    stack = make_stack()
    env_file = tmp_path / "service.env"
    # The settings come from the file, as from a developer's .env; PATH and HOME from the environment.
    env_file.write_text("".join(f"{k}={v}\n" for k, v in stack.env.items() if k not in ("PATH", "HOME")))
    env = {"PATH": stack.env["PATH"], "HOME": stack.env["HOME"], "ENV_FILE": str(env_file),
           "WORKER_PROCESSES": "1", "CONCURRENCY": "2"}
    log = open(tmp_path / "make-run.log", "w+")
    run = subprocess.Popen([sys.executable, "-m", "devstack.run"], env=env, cwd=procs.ROOT,
                           stdout=log, stderr=subprocess.STDOUT)
    try:
        job = stack.publish("progressive.jpg")
        assert stack.wait_for(job)["status"] == "completed"
        assert run.poll() is None  # it keeps running
    finally:
        run.send_signal(signal.SIGINT)  # Ctrl-C
        code = run.wait(120)
    log.seek(0)
    out = log.read()
    assert code == 0, out
    assert "applying the schema" in out and "stopping" in out
    # The listener and the workers it started are gone, and so are their sessions.
    wait_until(lambda: not stack.sql(
        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name LIKE 'media-publisher-%%' AND pid <> pg_backend_pid()"),
        30, "the service's database sessions to end")

"""The Procfile under honcho, the Procfile runner of the Python world: `honcho start`
runs the listener, the workers and the page, which publish (and show it) and keep running (the release
step is not among them: when a process exits, honcho stops all the others)."""

import json
import signal
import urllib.request

import pytest

from devstack import procs
from devstack.ports import free_port, wait_until


@pytest.mark.e2e
def test_honcho_start_runs_the_listener_the_workers_and_the_page_until_stopped(make_stack, tmp_path):
    stack = make_stack(WORKER_PROCESSES=1, CONCURRENCY=2, WEB_PORT=free_port())
    honcho = procs.Process("honcho", [str(procs.BIN / "honcho"), "start"], stack.env, tmp_path / "honcho.log")
    stack.processes.append(honcho)

    first = stack.wait_for(stack.publish("progressive.jpg"))
    assert first["status"] == "completed", honcho.log()
    # Still running, both of them: a second job is published too.
    assert stack.wait_for(stack.publish("adobe-rgb.jpg"))["status"] == "completed", honcho.log()
    assert honcho.running()
    log = honcho.log()
    assert "listener.1 started" in log and "worker.1 started" in log and "web.1 started" in log
    summary = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{stack.env['WEB_PORT']}/api/summary").read())
    assert summary["completed_last_day"] == 2
    assert "stopped" not in log and "release" not in log

    # SIGTERM (systemd, Docker) stops both; honcho exits when they have.
    honcho.popen.send_signal(signal.SIGTERM)
    honcho.popen.wait(60)
    wait_until(lambda: all(f"{name}.1 stopped" in honcho.log() for name in ("listener", "worker", "web")), 10,
               "honcho to report every process stopped", 0.1)

"""The Procfile under honcho, the Procfile runner of the Python world: `honcho start`
runs the listener and the workers, which publish and keep running (the release
step is not among them: when a process exits, honcho stops all the others)."""

import signal

import pytest

from devstack import procs
from devstack.ports import wait_until


@pytest.mark.e2e
def test_honcho_start_runs_the_listener_and_the_workers_until_stopped(make_stack, tmp_path):
    stack = make_stack(WORKER_PROCESSES=1, CONCURRENCY=2)
    honcho = procs.Process("honcho", [str(procs.BIN / "honcho"), "start"], stack.env, tmp_path / "honcho.log")
    stack.processes.append(honcho)

    first = stack.wait_for(stack.publish("progressive.jpg"))
    assert first["status"] == "completed", honcho.log()
    # Still running, both of them: a second job is published too.
    assert stack.wait_for(stack.publish("adobe-rgb.jpg"))["status"] == "completed", honcho.log()
    assert honcho.running()
    log = honcho.log()
    assert "listener.1 started" in log and "worker.1 started" in log
    assert "stopped" not in log and "release" not in log

    # SIGTERM (systemd, Docker) stops both; honcho exits when they have.
    honcho.popen.send_signal(signal.SIGTERM)
    honcho.popen.wait(60)
    wait_until(lambda: "listener.1 stopped" in honcho.log() and "worker.1 stopped" in honcho.log(), 10,
               "honcho to report both processes stopped", 0.1)

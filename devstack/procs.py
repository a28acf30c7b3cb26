"""The project's own processes, started exactly as an operator starts them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


class Process:
    def __init__(self, name: str, args: list[str], env: dict, log_path: Path, cwd: Path = ROOT):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.popen = subprocess.Popen(args, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.running():
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 30) -> int:
        # SIGTERM to the main process only, as Docker and Kubernetes send it: Dramatiq's main
        # process passes it on, and a worker process that gets a second one dies at once.
        if self.running():
            os.kill(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait()
        self._log.close()
        return self.popen.returncode

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")


def start_workers(env: dict, log_path: Path, processes: int = 2, threads: int = 3) -> Process:
    return Process("workers", [str(BIN / "dramatiq"), "actors", "--processes", str(processes),
                               "--threads", str(threads)], env, log_path)


def start_listener(env: dict, log_path: Path) -> Process:
    return Process("listener", [sys.executable, "-m", "listener"], env, log_path)

"""A whole publishing system for the system benchmarks, built as the e2e tests
build one (tests/support/stack.py): the machine's PostgreSQL (or an embedded one),
SeaweedFS as the bucket, the RAID stand-in serving the bench inputs, and the
listener and workers started by the operator's commands."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

from devstack import postgres, procs
from devstack.origin import Origin
from devstack.ports import wait_until
from devstack.s3 import SeaweedS3
from tests.support.stack import TOKEN, Stack

from . import queries

#: Production defaults where tests/support/stack.py shortens them for speed: the
#: benchmark measures the system as it is deployed (NOTIFY is the fast path;
#: the 15 s sweep must not be what makes pickup fast).
PRODUCTION_ENV = {
    "WORKER_POLL_INTERVAL": "15000",
    "JOB_LEASE_SECONDS": "60",
    "RETRY_MIN_BACKOFF_MS": "5000",
    "RETRY_MAX_BACKOFF_MS": "600000",
}


class Services:
    """PostgreSQL server, S3 server and origin, shared by every part of one run."""

    def __init__(self, inputs: dict[str, Path]):
        self._exit = contextlib.ExitStack()
        self.tmp = Path(tempfile.mkdtemp(prefix="mp-bench-"))
        self._exit.callback(shutil.rmtree, self.tmp, True)
        root = self.tmp / "raid"
        root.mkdir()
        for key, path in inputs.items():
            shutil.copy(path, root / key)  # the origin serves no symlink that leaves its folder
        self.pg = postgres.start(self.tmp / "pg-run")
        self._exit.callback(self.pg.stop)
        self.s3 = SeaweedS3(self.tmp / "seaweed", bucket="media").start()
        self._exit.callback(self.s3.stop)
        self.origin = Origin(root, TOKEN).start()
        self._exit.callback(self.origin.stop)

    def close(self):
        self._exit.close()

    @contextlib.contextmanager
    def system(self, workers_module: str = "actors", processes: int = 2, threads: int = 3,
               broker: str = "postgres", root: Path | None = None, prepare=None, **env):
        """A fresh database (and, on RabbitMQ, a fresh vhost) with the listener and workers
        running; stopped afterwards. root: another source tree to run (a baseline); prepare: called
        with the stack before anything starts (to load the database)."""
        stack = Stack(self.pg, self.s3, self.origin, Path(tempfile.mkdtemp(dir=self.tmp)), broker=broker,
                      root=root, **{**PRODUCTION_ENV, **env})
        try:
            if prepare is not None:
                prepare(stack)
            stack.workers = procs.Process(
                "workers", [str(procs.BIN / "dramatiq"), workers_module, "--processes", str(processes),
                            "--threads", str(threads)], stack.env, stack.tmp / "workers.log", stack.root)
            stack.start_listener()
            wait_for_workers(stack, processes)
            yield stack
        finally:
            stack.stop()


def worker_pids(stack: Stack) -> list[int]:
    """The worker processes the `dramatiq` command started (its children)."""
    pid = stack.workers.pid
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def wait_for_workers(stack: Stack, processes: int, timeout: float = 120) -> None:
    """Until every worker process and the listener say they are ready (their log lines)."""

    def ready():
        for proc in (stack.workers, stack.listener):
            if not proc.running():
                raise RuntimeError(f"{proc.name} exited:\n{proc.log()[-3000:]}")
        return (stack.workers.log().count("Worker process is ready for action") >= processes
                and "listening on channel" in stack.listener.log())

    wait_until(ready, timeout, "workers and listener to start", 0.2)


def add_files(stack: Stack, raid_key: str, n: int) -> list[str]:
    rows = stack.sql(queries.ADD_FILES, (raid_key, n))
    return [r["id"] for r in rows]


def wait_done(stack: Stack, job_ids: list[int], timeout: float) -> list[dict]:
    """Until every job is completed or failed; returns their rows. Raises if any failed."""

    def all_done():
        rows = stack.sql(queries.JOB_TIMES, (job_ids,))
        return rows if all(r["status"] in ("completed", "failed") for r in rows) else None

    rows = wait_until(all_done, timeout, f"{len(job_ids)} jobs to finish", 0.25)
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs failed, e.g. {failed[0]['last_error']}")
    return rows


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def seconds(delta) -> float:
    return delta.total_seconds()



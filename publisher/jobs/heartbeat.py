"""What a worker process keeps up while its steps run: the leases of its running
steps, its row in publisher_workers (how many threads it offers, on which host
queue), and a sweep of its host's scratch folders of attempts that ended. Each
beat also hears whether an operator drains the host (publisher_worker_beat), so
the lifecycle learns it with no query of its own.

The lifecycle (publisher/jobs/lifecycle.py) adds and removes steps; a step
whose time limit and margin have passed is no longer renewed (the SQL side,
publisher_heartbeat, decides that too), so its job is rescued, and /healthz
reports it (stuck in native code: its thread stays taken).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from datetime import timedelta

from publisher.jobs import host_faults
from publisher.jobs.host_identity import host_id
from publisher.jobs.locality import host_queue
from publisher.jobs.store import steps
from publisher.logs import short_error
from publisher.settings import fixed

logger = logging.getLogger("publisher.jobs")

#: Seconds between two sweeps of this host's scratch directory for folders of attempts that ended.
SCRATCH_SWEEP_SECONDS = 60.0


@dataclasses.dataclass(frozen=True)
class RunningStep:
    stage: str
    #: time.monotonic() past which the step has outrun its time limit and margin.
    overdue_at: float


class RunningSteps:
    """The steps this process runs, by (job id, attempt token); shared by its threads."""

    def __init__(self):
        self._steps: dict[tuple[int, str], RunningStep] = {}
        self._lock = threading.Lock()

    def add(self, job_id: int, token: str, step: RunningStep) -> None:
        with self._lock:
            self._steps[(job_id, token)] = step

    def remove(self, job_id: int, token: str) -> None:
        with self._lock:
            self._steps.pop((job_id, token), None)

    def attempts(self) -> list[tuple[int, str]]:
        with self._lock:
            return list(self._steps)

    def stuck(self) -> str | None:
        """A step running past its time limit and margin, said for /healthz; None: none."""
        now = time.monotonic()
        with self._lock:
            stuck = [(job, step) for (job, _), step in self._steps.items() if now > step.overdue_at]
        if not stuck:
            return None
        job, step = stuck[0]
        return f"the {step.stage} step of job {job} has run past its time limit (stuck in native code?)"


class Heartbeat:
    """A thread that renews the leases of `running` every quarter lease and sweeps the scratch;
    `host_drains` is set while the last beat heard that an operator drains this host."""

    def __init__(self, runtime, running: RunningSteps, host_drains: threading.Event, worker_id: str,
                 threads: int):
        self._runtime = runtime
        self._running = running
        self._host_drains = host_drains
        self._worker_id = worker_id
        self._threads = threads
        self._stop = threading.Event()
        self._next_sweep = 0.0
        self._thread = threading.Thread(target=self._beat, name="job-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _beat(self) -> None:
        interval = fixed.JOB_LEASE_SECONDS / 4
        while True:
            try:
                self.beat_once()
            except Exception as e:  # the next beat tries again; the lease allows for a few misses
                logger.warning("heartbeat failed: %s", short_error(e, self._runtime.redact))
            if self._stop.wait(interval):
                return

    def beat_once(self) -> None:
        rt = self._runtime
        running = self._running.attempts()
        host = host_id(rt.settings)
        # A host short of scratch space offers no threads: the listener claims no jobs for it.
        # Nor for a draining host: publisher_worker_beat records none for it, whatever is offered.
        threads = 0 if host_faults.short_of_space(rt) else self._threads
        with rt.db.transaction() as cur:
            draining = steps.worker_beat(cur, self._worker_id, host, host_queue(host), threads)
            # Heard before the beat commits: once the database shows this host offering no
            # threads, its processes already decline first steps.
            self._hear_draining(draining)
            if running:
                steps.heartbeat(cur, running, timedelta(seconds=fixed.JOB_LEASE_SECONDS))
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SCRATCH_SWEEP_SECONDS
            self._sweep_scratch()

    def _hear_draining(self, draining: bool) -> None:
        if draining == self._host_drains.is_set():
            return
        if draining:
            self._host_drains.set()
            logger.warning("this host drains: it finishes the jobs it has begun and takes no new first step")
        else:
            self._host_drains.clear()
            logger.info("this host no longer drains: it takes new jobs again")

    def _sweep_scratch(self) -> None:
        """Removes the scratch folders of attempts that are no longer current on this host."""
        rt = self._runtime
        listed = rt.scratch.attempts()
        if not listed:
            return
        with rt.db.transaction() as cur:
            current = steps.current_attempts(cur, listed, host_id(rt.settings))
        removed = rt.scratch.sweep(listed, current)
        if removed:
            logger.info("removed %d scratch folders of attempts that ended elsewhere or were replaced", removed)

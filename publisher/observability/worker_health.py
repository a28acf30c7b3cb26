"""/healthz and /readyz for the workers, as Dramatiq middleware.

Each worker process serves its own endpoints, on WORKER_METRICS_PORT + 1 + its
index (0 for the first process of `dramatiq --processes N`, 1 for the
second, ...), so a probe sees exactly the process it asks and a stuck
process can be found. /healthz fails when one of the process's worker or
consumer threads has died; /readyz checks PostgreSQL, the bucket, and that
SCRATCH_DIR has SCRATCH_MIN_FREE_MB and MIN_FREE_FILES files (inodes) free
(below either the host takes no first step either: publisher/jobs/host_faults.py).

A port that cannot be bound is logged and skipped: a probe endpoint must
never take a worker down.
"""

from __future__ import annotations

import logging
import multiprocessing

from dramatiq.middleware import Middleware

from publisher.jobs.host_faults import floor_bytes, shortage
from publisher.observability.health import Check, HealthServer, readiness_checks

logger = logging.getLogger("publisher.health")


def process_index() -> int:
    """0 for the first worker process the dramatiq CLI starts, 1 for the second, ...

    The CLI starts its worker processes first, in order, with multiprocessing,
    which numbers its children from 1 (`Process-1`, ...). A process not started
    that way (a test, `python -c`) is 0.
    """
    identity = getattr(multiprocessing.current_process(), "_identity", ())
    return identity[0] - 1 if identity else 0


def scratch_space_check(scratch, floor: int) -> Check:
    """Fails while the scratch directory has less than `floor` bytes or MIN_FREE_FILES files free."""
    def check():
        short = shortage(scratch.free_space(), floor)
        if short:
            raise RuntimeError(short)

    return check


class WorkerHealth(Middleware):
    def __init__(self, ops, runtime_factory, stuck_step=lambda: None):
        self.ops = ops
        #: A step of this process stuck past its time limit, if any (JobLifecycle.stuck_step).
        self._stuck_step = stuck_step
        self._runtime_factory = runtime_factory
        self._server: HealthServer | None = None
        self._worker = None
        self._stopping = False

    def after_worker_boot(self, broker, worker):
        if not self.ops.worker_health_port:
            return
        self._worker = worker
        rt = self._runtime_factory()
        port = self.ops.worker_health_port + process_index()
        try:
            ready = {**readiness_checks(rt.settings),
                     "scratch": scratch_space_check(rt.scratch, floor_bytes(rt.settings))}
            self._server = HealthServer(self.ops.http_host, port, alive=self._alive, ready=ready,
                                        redact=rt.redact).start()
        except OSError as e:
            logger.error("worker health endpoints not started on %s:%s: %s", self.ops.http_host, port, e)
            return
        logger.info("worker health on http://%s:%s/healthz and /readyz", self.ops.http_host, port)

    def before_worker_shutdown(self, broker, worker):
        self._stopping = True

    def after_worker_shutdown(self, broker, worker):
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _alive(self) -> str | None:
        if self._stopping:
            return "shutting down"
        worker = self._worker
        dead = [t.name for t in (*worker.consumers.values(), *worker.workers) if not t.is_alive()]
        if dead:
            return f"threads died: {', '.join(dead)}"
        return self._stuck_step()

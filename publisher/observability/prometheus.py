"""Our Prometheus metrics, beside Dramatiq's own.

Workers: `dramatiq --processes N` runs N worker processes. Dramatiq's
Prometheus middleware (configured in `WorkerPrometheus` below) puts
prometheus_client in multiprocess mode: every process writes its samples to
files in one directory, and one extra process (a Dramatiq "fork") serves them
all, summed, on WORKER_METRICS_PORT. Our worker metrics are created in each
process after that mode is set (`init_worker_metrics`), so they are served
with Dramatiq's. Until then, and in any process that is not a worker,
observing is a no-op.

Listener: one process, its own registry (`ListenerMetrics`), served with its
health endpoints on LISTENER_HTTP_PORT.

prometheus_client decides at import whether it runs in multiprocess mode, so
this module imports it only inside functions.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys

from dramatiq.middleware import prometheus as dramatiq_prometheus

from publisher import telemetry
from publisher.jobs.store.states import BROKER_STATES, COUNTED_STATUSES
from publisher.settings.ops import load_ops_settings

logger = logging.getLogger("publisher.metrics")

#: Seconds; from a small thumbnail (ms) to a slow 200 MB download (minutes).
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
#: Seconds from INSERT to the first step starting; NOTIFY makes it sub-second when idle.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
#: SSIMULACRA2 scores: finest around the targets (docs/imaging.md#quality-targets), 70 high, 90
#: visually lossless.
SCORE_BUCKETS = (30, 40, 50, 60, 65, 68, 70, 71, 72, 73, 74, 75, 76, 77, 78, 80, 85, 90, 95, 100)
#: Bytes of one variant: from a small thumb (kB) to a large display or an animation (MB).
VARIANT_BYTES_BUCKETS = (2_500, 5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 640_000,
                         1_280_000, 2_560_000, 5_120_000)


class WorkerMetrics:
    def __init__(self, registry=None):
        from prometheus_client import Counter, Histogram

        self.phase_seconds = Histogram(
            "publisher_phase_seconds",
            "Time spent in one phase of a job: download, decode_resize, encode, score (a decode and its "
            "SSIMULACRA2 score, searching a variant's quality), upload.",
            ["phase"], buckets=DURATION_BUCKETS, registry=registry,
        )
        self.step_seconds = Histogram(
            "publisher_step_seconds",
            "Time of one job step (fetch, variant, upload) by outcome (done, retry, failed).",
            ["stage", "outcome"], buckets=DURATION_BUCKETS, registry=registry,
        )
        self.queue_lag_seconds = Histogram(
            "publisher_queue_lag_seconds",
            "Seconds from the publish_jobs INSERT to the start of the job's first step.",
            buckets=LAG_BUCKETS, registry=registry,
        )
        self.failures = Counter(
            "publisher_step_failures_total",
            "Failed job steps by stage, reason (error class) and outcome (retry, failed, stale).",
            ["stage", "reason", "outcome"], registry=registry,
        )

        def per_variant(name: str, documentation: str, buckets: tuple) -> Histogram:
            return Histogram(name, documentation + ", by variant and format.", ["variant", "format"],
                             buckets=buckets, registry=registry)

        self.variant_score = per_variant("publisher_variant_score", "SSIMULACRA2 score of each variant made "
                                         "at a quality target", SCORE_BUCKETS)
        self.variant_bytes = per_variant("publisher_variant_bytes", "Bytes of each variant made", VARIANT_BYTES_BUCKETS)
        self.bytes = Counter(
            "publisher_bytes_total",
            "Bytes downloaded from the origin (in) and WebP bytes produced for publishing (out).",
            ["direction"], registry=registry,
        )


def init_worker_metrics() -> WorkerMetrics:
    """Creates this process's worker metrics and hands them to the job code's hooks
    (call once multiprocess mode is set)."""
    if telemetry.installed() is None:
        telemetry.install(WorkerMetrics())
    return telemetry.installed()


# -- workers: Dramatiq's Prometheus middleware, configured explicitly --------
#: Names of run directories: the main process's pid and, on Linux, its start time.
RUN_NAME = re.compile(r"(\d+)(?:-(\d+))?")


def run_id(pid: int) -> str:
    """Names one run of a process: its pid, and its start time where /proc tells it, so
    a pid used again (pid 1 in every container) does not count as the same run."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return f"{pid}-{fields[19]}"  # field 22 of stat(5): starttime
    except (OSError, IndexError):
        return str(pid)


def run_dir(base: str, dramatiq_pid: int) -> str:
    """The multiprocess directory of one `dramatiq` run, named after its main process."""
    return os.path.join(base, run_id(dramatiq_pid))


def wipe_stale_runs(base: str, keep: str) -> list[str]:
    """Removes the directories of earlier runs (their main process is gone), so counters start at 0."""
    removed: list[str] = []
    if not os.path.isdir(base):
        return removed
    for name in os.listdir(base):
        path = os.path.join(base, name)
        match = RUN_NAME.fullmatch(name)
        if path == keep or not match or _running(int(match.group(1)), name):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _running(pid: int, name: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    return run_id(pid) == name or "-" not in name


class WorkerPrometheus(dramatiq_prometheus.Prometheus):
    """Dramatiq's Prometheus middleware with its host, port and directory set by us.

    Dramatiq reads dramatiq_prom_host/port/db when it is imported (0.0.0.0:9191
    and a directory that is never wiped); our settings replace them. Each run
    of `dramatiq` gets a fresh directory named after its main process, and
    directories of runs whose process is gone are removed at start.
    """

    def __init__(self, ops):
        super().__init__()
        self.ops = ops

    @property
    def forks(self):
        # Served by one extra process, started by the dramatiq CLI.
        return [serve_worker_metrics] if self.ops.worker_metrics_port else []

    def after_process_boot(self, broker):
        base = self.ops.worker_metrics_dir
        directory = run_dir(base, os.getppid())
        os.makedirs(directory, exist_ok=True)
        for path in wipe_stale_runs(base, keep=directory):
            logger.info("removed metrics of an earlier run: %s", path)
        # Dramatiq's hooks read these module globals.
        dramatiq_prometheus.DB_PATH = directory
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        values = sys.modules.get("prometheus_client.values")
        if values is not None:
            # Something imported prometheus_client before the directory was
            # known: switch it to multiprocess values, or our samples would be
            # kept in this process's memory, where the exposition cannot see them.
            values.ValueClass = values.get_value_class()
        super().after_process_boot(broker)
        init_worker_metrics()

    def after_worker_shutdown(self, broker, worker):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), dramatiq_prometheus.DB_PATH)


def serve_worker_metrics() -> int:
    """The fork process: serves every worker process's samples on WORKER_METRICS_PORT."""
    ops = load_ops_settings()
    directory = run_dir(ops.worker_metrics_dir, os.getppid())  # our parent is the dramatiq main process
    os.makedirs(directory, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    from publisher.observability.health import HealthServer

    def metrics():
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    try:
        server = HealthServer(ops.http_host, ops.worker_metrics_port, metrics=metrics)
    except OSError as e:  # the workers go on; only their metrics are not served
        logger.error("worker metrics not served on %s:%s: %s", ops.http_host, ops.worker_metrics_port, e)
        return 1
    logger.info("worker metrics on http://%s:%s/metrics", ops.http_host, server.port)
    server.serve_forever()
    return 0


# -- listener ----------------------------------------------------------------
class ListenerMetrics:
    """The listener's view of the whole system, read from the database on a schedule."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry()
        r = self.registry
        self.jobs = Gauge("publisher_jobs", "Jobs by status: pending, queued, processing, failed "
                          "(completed ones are history: see publisher_jobs_last_hour).", ["status"], registry=r)
        self.last_hour = Gauge("publisher_jobs_last_hour", "Jobs completed or failed in the last hour.",
                               ["status"], registry=r)
        self.processing_seconds = Gauge(
            "publisher_job_processing_seconds_avg",
            "Average seconds from first step to published, of the jobs completed in the last hour.", registry=r)
        self.oldest_pending = Gauge(
            "publisher_oldest_pending_job_age_seconds", "Age of the oldest pending fresh lot (0: none).",
            registry=r)
        self.broker_messages = Gauge(
            "publisher_broker_messages", "Rows of dramatiq.queue by state.", ["state"], registry=r)
        self.maintenance_deleted = Counter(
            "publisher_maintenance_deleted_total", "Rows and objects removed by maintenance.", ["what"], registry=r)
        self.maintenance_runs = Counter(
            "publisher_maintenance_runs_total", "Maintenance rounds by result (ok, error).", ["result"], registry=r)
        self.outbox_pending = Gauge(
            "publisher_webhook_outbox_pending", "Completion events neither delivered to the webhook nor given up.",
            registry=r)
        self.outbox_oldest = Gauge(
            "publisher_webhook_outbox_oldest_age_seconds",
            "Age of the oldest completion event not yet delivered to the webhook (0: none).", registry=r)

    def record_status(self, snapshot: dict) -> None:
        for status in COUNTED_STATUSES:
            self.jobs.labels(status).set(snapshot["jobs"].get(status, 0))
        hour = snapshot["last_hour"]
        for ended in ("completed", "failed"):
            self.last_hour.labels(ended).set(hour[ended])
        self.processing_seconds.set(hour["avg_processing_seconds"] or 0)
        self.oldest_pending.set(snapshot["oldest_pending_seconds"] or 0)
        for state in BROKER_STATES:
            self.broker_messages.labels(state).set(snapshot["broker"].get(state, 0))

    def record_outbox(self, backlog: dict) -> None:
        self.outbox_pending.set(backlog["pending"])
        self.outbox_oldest.set(backlog["oldest_seconds"])

    def exposition(self):
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

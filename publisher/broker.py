"""The Dramatiq broker the listener and the workers share, with its middleware."""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, ShutdownNotifications, TimeLimit

from . import pgbroker
from .lifecycle import JobLifecycle
from .metrics import WorkerPrometheus
from .opsconfig import ops_settings_or_exit
from .stored_tracebacks import RedactStoredTracebacks
from .worker_health import WorkerHealth

#: The one queue job steps travel on; step priority keeps started jobs moving first.
QUEUE = "publish"


def setup_broker(runtime, runtime_factory) -> dramatiq.Broker:
    settings = runtime.settings
    ops = ops_settings_or_exit()
    middleware = [
        # Dramatiq's defaults; Prometheus with our host, port and directory (publisher/metrics.py).
        WorkerPrometheus(ops),
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=settings.retry_min_backoff_ms,
            max_backoff=settings.retry_max_backoff_ms,
        ),
        # /healthz and /readyz of each worker process (publisher/worker_health.py).
        WorkerHealth(ops, runtime_factory),
        # Retries stores tracebacks in broker messages: no secret may reach them.
        RedactStoredTracebacks(runtime_factory),
        # Last in the list, so its after-hooks run first: it decides, Retries acts.
        JobLifecycle(runtime_factory),
    ]
    broker = pgbroker.make_broker(
        settings.database_url, queues=1, threads=settings.concurrency, middleware=middleware
    )
    dramatiq.set_broker(broker)
    return broker

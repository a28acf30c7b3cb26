"""The Dramatiq broker the listener and the workers share, with its middleware.

The one place where the broker is chosen: RabbitMQ when BROKER_URL is set
(publisher/rabbitbroker.py), otherwise PostgreSQL (publisher/pgbroker.py).
"""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.common import q_name
from dramatiq.middleware import AgeLimit, Callbacks, Middleware, Pipelines, Retries, ShutdownNotifications, TimeLimit

from . import pgbroker
from .lifecycle import JobLifecycle
from .metrics import WorkerPrometheus
from .opsconfig import ops_settings_or_exit
from .stored_tracebacks import RedactStoredTracebacks
from .worker_health import WorkerHealth

#: The queue job steps travel on unless STAGE_QUEUES names another; step
#: priority keeps started jobs moving first.
QUEUE = "publish"

logger = logging.getLogger("publisher.broker")


def queue_for(stage: str) -> str:
    """The queue a step's actor is declared on: STAGE_QUEUES, else QUEUE.

    Workers started with `dramatiq actors --queues NAME ...` take only those
    steps, e.g. variants on the hosts with the most CPU.
    """
    from .runtime import worker_runtime

    return dict(worker_runtime().settings.stage_queues).get(stage, QUEUE)


class QueueCheck(Middleware):
    """Says so when `dramatiq actors --queues ...` names a queue that no step travels on
    (a typo, or STAGE_QUEUES not set the same on every host): such a worker would idle silently."""

    def after_worker_boot(self, broker, worker):
        declared = {q_name(name) for name in broker.get_declared_queues()}  # without the .DQ delay queues
        unknown = set(worker.consumer_whitelist or ()) - declared
        if unknown:
            logger.error("--queues names %s, on which no step travels (steps use %s; see STAGE_QUEUES)",
                         ", ".join(sorted(unknown)), ", ".join(sorted(declared)))


def uses_postgres_broker(broker: dramatiq.Broker) -> bool:
    """Whether dramatiq-pg carries the messages (and its repairs, e.g. re-notifying, apply)."""
    return isinstance(broker, pgbroker.PublisherBroker)


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
        # Warns about `--queues` naming a queue no step travels on.
        QueueCheck(),
        # Last in the list, so its after-hooks run first: it decides, Retries acts.
        JobLifecycle(runtime_factory),
    ]
    if settings.broker_url:
        from . import rabbitbroker  # imports pika, which the Postgres broker does not need

        broker = rabbitbroker.make_broker(settings.broker_url, middleware=middleware)
        logger.info("steps travel on RabbitMQ at %s", rabbitbroker.describe(settings.broker_url))
    else:
        queues = len({QUEUE, *(queue for _, queue in settings.stage_queues)})
        broker = pgbroker.make_broker(
            settings.database_url, queues=queues, threads=settings.concurrency, middleware=middleware
        )
        logger.debug("steps travel on PostgreSQL (dramatiq-pg)")
    dramatiq.set_broker(broker)
    return broker

"""The Dramatiq broker the listener and the workers share, with its middleware.

First steps travel on the shared queue; later steps are handed to the fetching
process's threads, and travel on each worker host's own queue only when retried
or handed back (publisher/jobs/local_steps.py, publisher/jobs/locality.py).

The one place where the broker is chosen: RabbitMQ when BROKER_URL is set
(publisher/jobs/rabbitbroker.py), otherwise PostgreSQL (publisher/jobs/pgbroker.py).
"""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.common import q_name
from dramatiq.middleware import AgeLimit, Callbacks, Middleware, Pipelines, Retries, ShutdownNotifications, TimeLimit

from publisher.jobs import pgbroker
from publisher.jobs.lifecycle import JobLifecycle
from publisher.jobs.locality import HostQueue
from publisher.jobs.stored_tracebacks import RedactStoredTracebacks
from publisher.observability.prometheus import WorkerPrometheus
from publisher.observability.worker_health import WorkerHealth
from publisher.settings import fixed
from publisher.settings.ops import ops_settings_or_exit

logger = logging.getLogger("publisher.broker")

#: Queues each worker process consumes: the shared one and its host's.
QUEUES_PER_WORKER = 2


class QueueCheck(Middleware):
    """Says so when `dramatiq actors --queues ...` names a queue that no step travels on
    (a typo): such a worker would idle silently."""

    def after_worker_boot(self, broker, worker):
        declared = {q_name(name) for name in broker.get_declared_queues()}  # without the .DQ delay queues
        unknown = set(worker.consumer_whitelist or ()) - declared
        if unknown:
            logger.error("--queues names %s, on which no step travels (steps use %s)",
                         ", ".join(sorted(unknown)), ", ".join(sorted(declared)))


def uses_postgres_broker(broker: dramatiq.Broker) -> bool:
    """Whether dramatiq-pg carries the messages (and its repairs, e.g. re-notifying, apply)."""
    return isinstance(broker, pgbroker.PublisherBroker)


def setup_broker(settings, runtime_factory) -> dramatiq.Broker:
    """The broker of this process, with every middleware. runtime_factory builds the
    process's runtime on first call: nothing here calls it before a worker boots."""
    ops = ops_settings_or_exit()
    lifecycle = JobLifecycle(runtime_factory, settings.max_retries)
    middleware = [
        # Dramatiq's defaults; Prometheus with our host, port and directory (publisher/observability/prometheus.py).
        WorkerPrometheus(ops),
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        # Whether a failed step is retried is what the job recorded (JobLifecycle.retry_when).
        Retries(
            retry_when=lifecycle.retry_when,
            min_backoff=fixed.RETRY_MIN_BACKOFF_MS,
            max_backoff=fixed.RETRY_MAX_BACKOFF_MS,
        ),
        # /healthz and /readyz of each worker process (publisher/observability/worker_health.py).
        WorkerHealth(ops, runtime_factory, stuck_step=lifecycle.stuck_step),
        # Retries stores tracebacks in broker messages: no secret may reach them.
        RedactStoredTracebacks(runtime_factory),
        # Each worker process consumes its host's queue too (publisher/jobs/locality.py).
        HostQueue(settings),
        # Warns about `--queues` naming a queue no step travels on.
        QueueCheck(),
        # Last in the list, so its after-hooks run first: it decides, Retries acts.
        lifecycle,
    ]
    if settings.broker_url:
        from publisher.jobs import rabbitbroker  # imports pika, which the Postgres broker does not need

        broker = rabbitbroker.make_broker(settings.broker_url, middleware=middleware,
                                          host_queue_expiry_ms=fixed.WORKER_HOST_EXPIRY_SECONDS * 1000)
        logger.info("steps travel on RabbitMQ at %s", rabbitbroker.describe(settings.broker_url))
    else:
        broker = pgbroker.make_broker(
            settings.database_url, queues=QUEUES_PER_WORKER, threads=settings.concurrency, middleware=middleware
        )
        logger.debug("steps travel on PostgreSQL (dramatiq-pg)")
    dramatiq.set_broker(broker)
    return broker

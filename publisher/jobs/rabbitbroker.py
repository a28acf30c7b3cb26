"""Everything specific to the RabbitMQ broker (BROKER_URL=amqp://...), in one place.

Dramatiq's own RabbitmqBroker does the work; this module only chooses its
options:

- confirm_delivery: enqueue returns once RabbitMQ has the message, so the
  listener's claim (which commits after enqueueing) never commits for a
  message the broker did not take.
- max_priority: the queues are priority queues, and a first step is published
  with the priority of its job's lane (fresh lots first, the backlog last), a
  later step (retried, or handed back) above every first step, as the
  Postgres broker's consumers take them.
- its consumers ack nothing for a step handed over inside a worker process
  (publisher/jobs/local_steps.py), which RabbitMQ never delivered, and yield
  each message as a step the worker's queue orders (dispatch.OrderedStep).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import dramatiq
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL, RabbitmqBroker, _RabbitmqConsumer, _RabbitmqMessage
from dramatiq.common import q_name, xq_name
from dramatiq.middleware import Middleware

from publisher.jobs.dispatch import OrderedStep, is_handed, lane_of
from publisher.jobs.locality import is_host_queue
from publisher.stages import STAGES

#: Priority levels of the queues (x-max-priority). RabbitMQ advises few levels:
#: each costs memory and CPU per queue.
MAX_PRIORITY = 3


def broker_priority(stage: str, lane: int) -> int:
    """RabbitMQ delivers higher numbers first. A later step travels only when retried or handed
    back, and goes first (a job begun is finished first); a first step by its job's lane: fresh 2,
    retry 1, backlog 0."""
    return MAX_PRIORITY - 1 - (min(max(lane, 0), MAX_PRIORITY - 1) if stage == STAGES[0] else 0)


class BrokerPriority(Middleware):
    """Publishes each step with its broker priority."""

    def before_enqueue(self, broker, message, delay):
        # Read by RabbitmqBroker.enqueue right after this hook.
        if message.actor_name in STAGES:
            message.options["broker_priority"] = broker_priority(message.actor_name, lane_of(message.options))


def describe(url: str) -> str:
    """Where the broker is, for logs: host, port and vhost, never the credentials."""
    parts = urlsplit(url)
    port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    return f"{parts.scheme}://{parts.hostname}:{port}, vhost {unquote(parts.path[1:]) or '/'!r}"


class _OrderedRabbitmqStep(OrderedStep):
    """A delivered step, ordered in the worker's queue as the steps handed over in the process are,
    with what the consumer acks it by."""

    def __init__(self, delivered: _RabbitmqMessage):
        super().__init__(delivered._message)
        self.redelivered, self._tag = delivered.redelivered, delivered._tag


class PublisherRabbitmqConsumer(_RabbitmqConsumer):
    """Acks and nacks nothing for a step handed over in this process (publisher/jobs/local_steps.py):
    RabbitMQ never delivered it."""

    def __next__(self):
        delivered = super().__next__()
        return None if delivered is None else _OrderedRabbitmqStep(delivered)

    def ack(self, message):
        if not is_handed(message):
            super().ack(message)

    def nack(self, message):
        if not is_handed(message):
            super().nack(message)


class PublisherRabbitmqBroker(RabbitmqBroker):
    """Host queues (and their delay and dead-letter queues) expire once no consumer has
    used them for WORKER_HOST_EXPIRY_SECONDS (x-expires): a host that is gone for good
    leaves nothing behind. Its jobs were handed out again long before (publisher_rescue)."""

    def __init__(self, *, host_queue_expiry_ms: int, **kwargs):
        self.host_queue_expiry_ms = host_queue_expiry_ms
        super().__init__(**kwargs)

    @property
    def consumer_class(self):
        return PublisherRabbitmqConsumer

    def _expiry(self, queue_name) -> dict:
        return {"x-expires": self.host_queue_expiry_ms} if is_host_queue(q_name(queue_name)) else {}

    def _build_queue_arguments(self, queue_name):
        return {**super()._build_queue_arguments(queue_name), **self._expiry(queue_name)}

    def _declare_xq_queue(self, queue_name):
        arguments = {"x-message-ttl": DEAD_MESSAGE_TTL, **self._expiry(queue_name)}
        return self.channel.queue_declare(queue=xq_name(queue_name), durable=True, arguments=arguments)


def make_broker(url: str, *, middleware, host_queue_expiry_ms: int) -> dramatiq.Broker:
    return PublisherRabbitmqBroker(
        host_queue_expiry_ms=host_queue_expiry_ms,
        url=url, confirm_delivery=True, max_priority=MAX_PRIORITY,
        # First, so JobLifecycle stays last (its after-hooks must run before Retries').
        middleware=[BrokerPriority(), *middleware],
    )

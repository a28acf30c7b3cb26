"""How a step of a job is sent: to the shared queue for a first step, to the
fetching host's own queue for the steps after it (publisher/jobs/locality.py),
by actor name, with the step's time limit."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Protocol, TypeGuard

import dramatiq

from publisher.jobs.locality import QUEUE
from publisher.jobs.store.cursor import Cursor
from publisher.settings import fixed
from publisher.stages import STAGES


def time_limit_ms() -> int:
    """Dramatiq's time limit of every step (a message option, read by its TimeLimit middleware)."""
    return fixed.STEP_TIME_LIMIT_SECONDS * 1000


def step_deadline() -> timedelta:
    """How long a step's lease may be renewed: its time limit, and a lease more for the
    time limit to take effect. Past it the step is taken for stuck (native code that
    no time limit interrupts) and its job is rescued."""
    return timedelta(seconds=fixed.STEP_TIME_LIMIT_SECONDS + fixed.JOB_LEASE_SECONDS)


class TransactionalBroker(Protocol):
    """A broker that stores a message in the sender's database transaction (publisher/jobs/pgbroker.py)."""

    def enqueue_on(self, cur: Cursor, message: dramatiq.Message[Any]) -> Any: ...

    def done_on(self, cur: Cursor, message: dramatiq.Message[Any]) -> None: ...

    def mark_acked(self, message: dramatiq.Message[Any]) -> None: ...


def sends_in_transaction(broker: object) -> TypeGuard[TransactionalBroker]:
    """Whether the broker stores a message in the sender's database transaction (the Postgres
    broker; RabbitMQ publishes at once, whatever becomes of the transaction)."""
    return hasattr(broker, "enqueue_on")


def send_step(broker: dramatiq.Broker, stage: str, job_id: int, token: str, *, queue_name: str,
              delay: timedelta | None = None, cur: Cursor | None = None) -> None:
    """Sends one step of a job's attempt to a queue: the shared one for a first step,
    the host's own for the steps after it. The message names its actor, so the
    sender (the listener) need not import the actors. With `cur`, in that cursor's
    transaction (sends_in_transaction(broker) must hold)."""
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=queue_name, actor_name=stage, args=(job_id, token), kwargs={},
        options={"time_limit": time_limit_ms()})
    delay_ms = int(delay.total_seconds() * 1000) if delay else None
    if cur is not None:
        if delay_ms or not sends_in_transaction(broker):
            raise ValueError("only an undelayed step on the Postgres broker is sent in the sender's transaction")
        broker.enqueue_on(cur, message)
    else:
        broker.enqueue(message, delay=delay_ms)


def send_first_step(broker: dramatiq.Broker, job_id: int, token: str, delay: timedelta | None = None,
                    cur: Cursor | None = None) -> None:
    send_step(broker, STAGES[0], job_id, token, queue_name=QUEUE, delay=delay, cur=cur)


@contextlib.contextmanager
def step_recorded(db: Any, broker: dramatiq.Broker, message: dramatiq.Message[Any]) -> Iterator[Cursor]:
    """The transaction that records a step's end. On the Postgres broker it also marks the step's own
    message done, and once it has committed the consumer's ack only gives back the message's lock; if
    it rolls back, the message is acked as usual."""
    with db.transaction() as cur:
        yield cur
        if sends_in_transaction(broker):
            broker.done_on(cur, message)
    if sends_in_transaction(broker):
        broker.mark_acked(message)

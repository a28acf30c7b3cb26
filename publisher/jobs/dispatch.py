"""How a step of a job is sent: to the shared queue for a first step; the steps after it
are handed to the fetching process's own threads (publisher/jobs/local_steps.py), or, when
handed back or retried, sent to the fetching host's own queue (publisher/jobs/locality.py).
By actor name, with the step's time limit."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any, Protocol, TypeGuard

import dramatiq
from dramatiq.broker import MessageProxy

from publisher.jobs.locality import QUEUE
from publisher.jobs.store.cursor import Cursor
from publisher.settings import fixed
from publisher.stages import PRIORITY, STAGES


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

    def enqueue_all_on(self, cur: Cursor, messages: list[dramatiq.Message[Any]]) -> None: ...

    def done_on(self, cur: Cursor, message: dramatiq.Message[Any]) -> None: ...

    def mark_acked(self, message: dramatiq.Message[Any]) -> None: ...


def sends_in_transaction(broker: object) -> TypeGuard[TransactionalBroker]:
    """Whether the broker stores a message in the sender's database transaction (the Postgres
    broker; RabbitMQ publishes at once, whatever becomes of the transaction)."""
    return hasattr(broker, "enqueue_on")


class OrderedStep(MessageProxy):
    """A step in Dramatiq's worker queue of (priority, message), which its threads take lowest first.

    A step handed over inside the process waits at queue_priority: a fresh job's later steps at their
    actors' priorities, before everything (a job begun is finished first), every other step at the
    first step's. Among those, steps go in the order they are due: when they reached this process,
    plus LANE_YIELD_SECONDS for each lane below fresh, twice that for a first step. So a fresh lot's
    first step goes before the lower lanes' steps that arrived shortly before it, and each of those is
    overtaken only by what arrives within its yield: a stream of fresh lots never holds it longer.
    Within a lower lane, a later step goes before the first steps that arrived up to its yield before
    it. A later step the broker delivers (retried, or handed back by a stopping process) keeps its
    actor's priority, as Dramatiq queues every delivered message: rare, and ahead of every first step.
    Both brokers' consumers yield these, so that delivered and handed steps compare."""

    def __init__(self, message: dramatiq.Message[Any], *, arrived: float | None = None):
        super().__init__(message)
        arrived = time.monotonic() if arrived is None else arrived  # when it reached this process
        yields = fixed.LANE_YIELD_SECONDS * lane_of(message.options) * (2 if message.actor_name == STAGES[0] else 1)
        self.due = arrived + yields

    def __lt__(self, other: object) -> bool:
        return not isinstance(other, OrderedStep) or self.due < other.due


def queue_priority(stage: str, lane: int) -> int:
    """The priority a step waits at in a worker's queue (OrderedStep): a fresh job's own, a lower
    lane's that of a first step, so that fresh lots go first."""
    return PRIORITY[stage] if lane == 0 else PRIORITY[STAGES[0]]


class HandedStep(OrderedStep):
    """A step's message handed straight to this worker process's threads (publisher/jobs/local_steps.py):
    it was never stored in the broker, so no consumer acks, nacks or requeues it."""

    def __init__(self, message: dramatiq.Message[Any], file_id: str | None, *, arrived: float | None = None):
        super().__init__(message, arrived=arrived)
        self.file_id = file_id


def is_handed(message: object) -> bool:
    return isinstance(message, HandedStep)


def step_message(stage: str, job_id: int, token: str, queue_name: str, lane: int | None = None
                 ) -> dramatiq.Message[Any]:
    """One step of a job's attempt, by actor name (the sender need not import the actors); a first
    step carries its job's lane, so that the brokers deliver a fresh lot's first (lane_of)."""
    options: dict[str, Any] = {"time_limit": time_limit_ms()}
    if lane is not None:
        options["lane"] = lane
    return dramatiq.Message(queue_name=queue_name, actor_name=stage, args=(job_id, token), kwargs={},
                            options=options)


def lane_of(options: Any) -> int:
    """The lane a step was sent in (publish_jobs.lane: 0 fresh, 1 retry, 2 backlog), from its message's
    options, read back from the broker; a step sent with none counts as fresh."""
    lane = options.get("lane", 0) if isinstance(options, dict) else 0
    return lane if type(lane) is int else 0


def send_step(broker: dramatiq.Broker, stage: str, job_id: int, token: str, *, queue_name: str,
              delay: timedelta | None = None, cur: Cursor | None = None, lane: int | None = None) -> None:
    """Sends one step of a job's attempt to a queue: the shared one for a first step, the
    host's own for a later step handed back (publisher/jobs/local_steps.py). With `cur`, in that cursor's
    transaction (sends_in_transaction(broker) must hold)."""
    message = step_message(stage, job_id, token, queue_name, lane)
    delay_ms = int(delay.total_seconds() * 1000) if delay else None
    if cur is not None:
        if delay_ms or not sends_in_transaction(broker):
            raise ValueError("only an undelayed step on the Postgres broker is sent in the sender's transaction")
        broker.enqueue_on(cur, message)
    else:
        broker.enqueue(message, delay=delay_ms)


def send_first_step(broker: dramatiq.Broker, job_id: int, token: str, delay: timedelta | None = None,
                    cur: Cursor | None = None, lane: int | None = None) -> None:
    send_step(broker, STAGES[0], job_id, token, queue_name=QUEUE, delay=delay, cur=cur, lane=lane)


def send_first_steps(broker: dramatiq.Broker, jobs: Iterable[tuple[int, str, int]], cur: Cursor | None = None
                     ) -> None:
    """The first steps of claimed jobs (job id, token, lane). With `cur`, in that cursor's transaction
    and one round trip (sends_in_transaction(broker) must hold); without, published one by one."""
    messages = [step_message(STAGES[0], job_id, token, QUEUE, lane) for job_id, token, lane in jobs]
    if cur is None:
        for message in messages:
            broker.enqueue(message)
    elif not sends_in_transaction(broker):
        raise ValueError("only the Postgres broker sends steps in the sender's transaction")
    else:
        broker.enqueue_all_on(cur, messages)


@contextlib.contextmanager
def step_recorded(db: Any, broker: dramatiq.Broker, message: dramatiq.Message[Any]) -> Iterator[Cursor]:
    """The transaction that records a step's end: the caller's one statement. On the Postgres broker it
    also marks the step's own message done (unless it was handed over: never stored), and once it has
    committed the consumer's ack only gives back the message's lock; if it rolls back, the message is
    acked as usual. Without a message to mark, the statement is its own transaction (Database.statement)."""
    if not sends_in_transaction(broker) or is_handed(message):
        with db.statement() as cur:
            yield cur
        return
    with db.transaction() as cur:
        yield cur
        broker.done_on(cur, message)
    broker.mark_acked(message)

"""The steps after a job's fetch, handed to this worker process's own threads instead of
being sent through the broker.

A job's later steps run on the host that fetched it (publisher/jobs/locality.py). Sent through
the broker, each was a message stored, announced, consumed, locked and marked done: more of the
database's work per job than the steps' own bookkeeping (BENCHMARKS.md, "A year of history").
Instead, the transaction that records a step's end begins the next step on this host
(publisher_pass_step), and the next step's message goes straight onto this process's work queue, in
its place there (dispatch.OrderedStep: a fresh job's steps first), where Dramatiq's worker threads
take it as any other message.

From then on the step is this process's: the heartbeat renews its lease while it waits for a
thread, and its time limit counts from the handover. If the process dies, the lease runs out and
the job is rescued, as for a step that was running. If it stops (SIGTERM), the steps still
waiting are handed back: each job waits between steps again, with its step sent to the host's
queue in the same transaction, for this host's next process.

A handed message was never stored: the consumers ack, nack and requeue nothing for it
(dispatch.is_handed). A retry of a handed step goes through the broker as any retry (Dramatiq's Retries).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import dramatiq

from publisher.jobs.dispatch import (
    HandedStep,
    is_handed,
    lane_of,
    queue_priority,
    send_step,
    sends_in_transaction,
    step_message,
)
from publisher.jobs.store import steps
from publisher.logs import short_error

logger = logging.getLogger("publisher.jobs")


class LocalSteps:
    """This worker process's handed steps not yet taken by a thread; shared by its threads."""

    def __init__(self) -> None:
        self._broker: dramatiq.Broker | None = None
        #: Dramatiq's worker queue of (priority, message), which its threads take from.
        self._work_queue: Any = None
        self._waiting: dict[str, HandedStep] = {}
        self._lock = threading.Lock()

    def attach(self, broker: dramatiq.Broker, work_queue: Any) -> None:
        """The worker's broker and queue, once it exists and before any of its threads can end a step."""
        self._broker, self._work_queue = broker, work_queue

    def hand(self, stage: str, job_id: int, token: str, queue_name: str, lane: int, file_id: str | None) -> None:
        """Puts the step, which the caller has begun (publisher_pass_step), before this process's threads."""
        step = HandedStep(step_message(stage, job_id, token, queue_name, lane), file_id)
        with self._lock:
            self._waiting[step.message_id] = step
        self._work_queue.put((queue_priority(stage, lane), step))

    def take(self, message: object) -> bool:
        """Whether a thread is about to run a step handed here, which is begun already."""
        if not is_handed(message):
            return False
        with self._lock:
            return self._waiting.pop(message.message_id, None) is not None  # type: ignore[attr-defined]

    def hand_back(self, db: Any, redact) -> None:
        """As the worker stops: every step no thread has taken goes back to the host's queue. A thread
        that still takes one finds it begun no more and begins it as any delivered step."""
        with self._lock:
            waiting, self._waiting = list(self._waiting.values()), {}
        in_transaction = sends_in_transaction(self._broker)
        for step in waiting:
            job_id, token = step.args[0], step.args[1]
            try:
                with db.transaction() as cur:
                    handed = steps.hand_back_step(cur, job_id, token, step.actor_name)
                    if handed and in_transaction:
                        self._send_to_host_queue(step, cur)
                if handed and not in_transaction:
                    self._send_to_host_queue(step, None)  # after the commit: RabbitMQ publishes at once
            except Exception as e:
                # Begun still (its lease runs out: rescued), or waiting with no message (rescued once its
                # host is silent, or after JOB_HANDOFF_SECONDS).
                logger.error("job=%s: the %s step could not be handed back to the host's queue: %s", job_id,
                             step.actor_name, short_error(e, redact))
                continue
            if handed:
                logger.info("job=%s stage=%s handed back to the host's queue (the worker stops)", job_id,
                            step.actor_name)

    def _send_to_host_queue(self, step: HandedStep, cur: Any) -> None:
        assert self._broker is not None  # a step waits only once the worker is attached
        send_step(self._broker, step.actor_name, step.args[0], step.args[1], queue_name=step.queue_name,
                  cur=cur, lane=lane_of(step.options))

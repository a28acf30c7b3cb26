"""Claim: pending jobs, as far as the live workers have room for them
(QUEUED_JOBS_PER_THREAD per worker thread), each sent as its first step.

Claiming uses FOR UPDATE SKIP LOCKED inside the transaction that enqueues, so two
listeners never enqueue one job twice, and a crash mid-way leaves the job pending.
A burst waits as `pending`, where waiting charges nothing. A job that starts frees
room silently, so while jobs wait for room the claim runs again on a timer of its
own (CLAIM_REFILL_SECONDS after a claim that took jobs, later the longer the room
stays full): one claim takes the room that several starts freed, where a NOTIFY
per start cost a claim per job."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from publisher.jobs.dispatch import send_first_steps, sends_in_transaction
from publisher.jobs.locality import host_alive
from publisher.jobs.store import intake
from publisher.jobs.store.cursor import Cursor
from publisher.jobs.store.rows import ClaimedJob
from publisher.logs import job_fields
from publisher.settings import fixed

logger = logging.getLogger("publisher.listener")

#: Jobs claimed per transaction.
CLAIM_BATCH = 100


@dataclasses.dataclass(frozen=True)
class ClaimConfig:
    #: Seconds between two sweeps for pending jobs (NOTIFY is not durable).
    interval: float
    per_thread: int
    alive: timedelta

    @classmethod
    def from_settings(cls, settings) -> ClaimConfig:
        return cls(settings.worker_poll_interval_ms / 1000, fixed.QUEUED_JOBS_PER_THREAD, host_alive())


def enqueue_claimed(rt, broker, stop: threading.Event, claim: Callable[[Cursor, int], list[ClaimedJob]],
                    verb: str) -> int:
    """Claims in batches until less than a batch is left, sending each job's first step
    before its claim commits. On the Postgres broker the messages are stored in the
    claim's own transaction, in one statement: both or neither. On RabbitMQ they are
    published as the claim runs: if sending fails, the claim rolls back and the messages
    sent so far are stale."""
    transactional = sends_in_transaction(broker)
    total = 0
    while not stop.is_set():
        with rt.db.transaction() as cur:
            jobs = claim(cur, CLAIM_BATCH)
            send_first_steps(broker, [(job.job_id, job.token, job.lane) for job in jobs],
                             cur=cur if transactional else None)
        for job in jobs:
            logger.info("job=%s file=%s %s from stage %s", job.job_id, job.file_id, verb, job.stage,
                        extra=job_fields(job.job_id, job.file_id, job.stage, event=verb.split()[0]))
        total += len(jobs)
        if len(jobs) < CLAIM_BATCH:
            break
    return total


class Claim:
    name = "claim"

    def __init__(self, rt, broker, stop: threading.Event, clock: Callable[[], float] = time.monotonic):
        self.rt, self.broker, self.stop = rt, broker, stop
        self.config = ClaimConfig.from_settings(rt.settings)
        #: Seconds until the next claim; the loop reads it after each round.
        self.interval = self.config.interval
        self._clock = clock
        #: When a claim last took jobs: the room was full then.
        self._filled_at = clock()

    def run_once(self) -> int:
        c = self.config
        try:
            claimed = enqueue_claimed(self.rt, self.broker, self.stop,
                                      lambda cur, limit: intake.claim_pending(cur, limit, c.per_thread, c.alive),
                                      "enqueued")
            self._schedule_next(claimed)
        except Exception:
            self.interval = c.interval  # a claim that fails is tried again at the sweep, not in a tight loop
            raise
        return claimed

    def _schedule_next(self, claimed: int) -> None:
        """Soon after a claim that took jobs: more may wait. While jobs wait for room, after as long as
        the room has been full, up to the sweep: the room a start frees is claimed before the thread
        that started its waiting job can have finished it, and claims woken by new jobs meanwhile do
        not push the next one later. At the sweep once no job waits."""
        now = self._clock()
        if claimed:
            self._filled_at = now
            self.interval = fixed.CLAIM_REFILL_SECONDS
            return
        with self.rt.db.statement() as cur:
            waits = intake.pending_waits(cur)
        if waits:
            self.interval = min(max(now - self._filled_at, fixed.CLAIM_REFILL_SECONDS), self.config.interval)
        else:
            self.interval = self.config.interval

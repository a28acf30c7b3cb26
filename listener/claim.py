"""Claim: pending jobs, as far as the live workers have room for them
(QUEUED_JOBS_PER_THREAD per worker thread), each sent as its first step.

Claiming uses FOR UPDATE SKIP LOCKED inside the transaction that enqueues, so two
listeners never enqueue one job twice, and a crash mid-way leaves the job pending.
A burst waits as `pending`, where waiting charges nothing. A job that starts frees
room silently, so while jobs wait for room the claim runs again on a short timer
(CLAIM_REFILL_SECONDS, backing off while it finds no room): one claim takes the
room that several starts freed, where a NOTIFY per start cost a claim per job."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from publisher.jobs.dispatch import send_first_step, sends_in_transaction
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
    claim's own transaction: both or neither. On RabbitMQ they are published as the
    claim runs: if sending fails, the claim rolls back and the messages sent so far
    are stale."""
    cur_if_transactional = sends_in_transaction(broker)
    total = 0
    while not stop.is_set():
        with rt.db.transaction() as cur:
            jobs = claim(cur, CLAIM_BATCH)
            for job in jobs:
                send_first_step(broker, job.job_id, job.token, cur=cur if cur_if_transactional else None,
                                lane=job.lane)
        for job in jobs:
            logger.info("job=%s file=%s %s from stage %s", job.job_id, job.file_id, verb, job.stage,
                        extra=job_fields(job.job_id, job.file_id, job.stage, event=verb.split()[0]))
        total += len(jobs)
        if len(jobs) < CLAIM_BATCH:
            break
    return total


class Claim:
    name = "claim"

    def __init__(self, rt, broker, stop: threading.Event):
        self.rt, self.broker, self.stop = rt, broker, stop
        self.config = ClaimConfig.from_settings(rt.settings)
        #: Seconds until the next claim; the loop reads it after each round.
        self.interval = self.config.interval
        self._refill = fixed.CLAIM_REFILL_SECONDS

    def run_once(self) -> int:
        c = self.config
        claimed = enqueue_claimed(self.rt, self.broker, self.stop,
                                  lambda cur, limit: intake.claim_pending(cur, limit, c.per_thread, c.alive),
                                  "enqueued")
        self._schedule_next(claimed)
        return claimed

    def _schedule_next(self, claimed: int) -> None:
        """Soon after a claim that took jobs (more may wait); while jobs wait and a claim found no
        room, twice as late each time; at the sweep interval once no job waits."""
        if claimed:
            self._refill = fixed.CLAIM_REFILL_SECONDS
            self.interval = self._refill
            return
        with self.rt.db.transaction() as cur:
            waits = intake.pending_waits(cur)
        if waits:
            self._refill = min(self._refill * 2, self.config.interval)
            self.interval = self._refill
        else:
            self._refill = fixed.CLAIM_REFILL_SECONDS
            self.interval = self.config.interval

"""`python -m listener`: LISTENs for runnable jobs and enqueues their steps.

NOTIFY is not durable, so the listener also sweeps for pending jobs when it
starts, after every reconnect, and every WORKER_POLL_INTERVAL ms. Claiming
uses FOR UPDATE SKIP LOCKED inside the transaction that enqueues, so two
listeners never enqueue one job twice, and a crash mid-way leaves the job
pending. It claims only as many jobs as the live workers can start soon
(QUEUED_JOBS_PER_THREAD per worker thread): a burst waits as `pending`, where
waiting charges nothing, and each job that starts (a NOTIFY) lets another in.
Its other duties each run on their own interval.
"""

from __future__ import annotations

import logging
import select
import signal
import threading
import time
from datetime import timedelta

from publisher.clients import db as dbmod
from publisher.jobs import pgbroker
from publisher.jobs import queries
from publisher.app import runtime
from publisher.app.broker import setup_broker, uses_postgres_broker
from publisher.jobs.lifecycle import send_first_step
from publisher.logs import job_fields, short_error

logger = logging.getLogger("publisher.listener")

#: Jobs claimed per transaction.
CLAIM_BATCH = 100
#: Seconds between tries to reach the database while it is away.
RECONNECT_MAX_WAIT = 10.0


class Duty:
    """One background duty: a name, an interval in seconds, and what it does."""

    def __init__(self, name: str, interval: float, run):
        self.name, self.interval, self.run = name, interval, run
        self.due = 0.0


class Listener:
    def __init__(self, rt, broker):
        self.rt = rt
        self.broker = broker
        self.stop = threading.Event()
        self._conn = None
        #: When the loop last turned (monotonic); /healthz reads it.
        self.last_turn = time.monotonic()
        settings = rt.settings
        self.duties = [
            Duty("sweep", settings.worker_poll_interval_ms / 1000, self.enqueue_pending),
            Duty("rescue", max(1.0, settings.job_lease_seconds / 4), self.rescue_expired),
        ]
        if uses_postgres_broker(broker):  # RabbitMQ redelivers by itself
            renotifier = pgbroker.OrphanRenotifier()
            self.duties.append(Duty("renotify", 2.0, lambda: self._in_transaction(renotifier.run)))
        # Gauges and maintenance (listener/ops.py).
        from .ops import ListenerOps

        self.ops = ListenerOps(self)
        self.duties += self.ops.duties(Duty)

    # -- duties ---------------------------------------------------------
    def enqueue_pending(self) -> int:
        settings = self.rt.settings
        alive = timedelta(seconds=settings.job_lease_seconds)
        return self._claim_and_enqueue(
            lambda cur, limit: queries.claim_pending(cur, limit, settings.queued_jobs_per_thread, alive),
            "enqueued")

    def rescue_expired(self) -> int:
        settings = self.rt.settings
        alive = timedelta(seconds=settings.job_lease_seconds)
        handoff = timedelta(seconds=settings.job_handoff_seconds)
        return self._claim_and_enqueue(lambda cur, limit: queries.rescue(cur, limit, alive, handoff),
                                       "rescued (step lost its lease, host lost, or message lost)")

    def _claim_and_enqueue(self, claim, verb: str) -> int:
        total = 0
        while not self.stop.is_set():
            with self.rt.db.transaction() as cur:
                jobs = claim(cur, CLAIM_BATCH)
                files = queries.file_ids(cur, [job["job_id"] for job in jobs]) if jobs else {}
                for job in jobs:
                    # Enqueued before the claim commits: if this fails, the
                    # claim rolls back and the messages sent so far are stale.
                    send_first_step(self.broker, job["job_id"], job["token"], self.rt.settings)
            for job in jobs:
                logger.info("job=%s file=%s %s from stage %s", job["job_id"], files.get(job["job_id"]), verb,
                            job["stage"], extra=job_fields(job["job_id"], files.get(job["job_id"]), job["stage"],
                                                           event=verb.split()[0]))
            total += len(jobs)
            if len(jobs) < CLAIM_BATCH:
                return total
        return total

    def _in_transaction(self, fn):
        with self.rt.db.transaction() as cur:
            return fn(cur)

    # -- loop -----------------------------------------------------------
    def run(self) -> None:
        wait = 0.5
        while not self.stop.is_set():
            self.last_turn = time.monotonic()
            try:
                self._listen()
                self._save_settings()
                self._run_duty(self.duties[0], force=True)  # notifications may have been missed
                wait = 0.5
                self._loop()
            except dbmod.DISCONNECTS as e:
                logger.warning("database connection lost (%s); reconnecting in %.1fs",
                               short_error(e, self.rt.redact), wait)
                self._close()
                self.stop.wait(wait)
                wait = min(wait * 2, RECONNECT_MAX_WAIT)
        self._close()
        logger.info("listener stopped")

    def _save_settings(self):
        # New jobs take MAX_RETRIES as their max_retries (sql/008_settings.sql).
        # Ended jobs write their events to the webhook outbox only while a listener delivers them (010).
        with self.rt.db.transaction() as cur:
            queries.save_setting(cur, "max_retries", self.rt.settings.max_retries)
            queries.save_setting(cur, "webhook", "on" if self.ops.ops_settings.webhook_url else "off")

    def _listen(self):
        self._close()
        self._conn = dbmod.connect(self.rt.settings.database_url, "media-publisher-listener")
        self._conn.autocommit = True
        with self._conn.cursor() as cur:
            cur.execute(f"LISTEN {queries.CHANNEL}")
        logger.info("listening on channel %s", queries.CHANNEL)

    def _loop(self):
        while not self.stop.is_set():
            now = self.last_turn = time.monotonic()
            for duty in self.duties:
                if now >= duty.due:
                    self._run_duty(duty)
            timeout = max(0.0, min(d.due for d in self.duties) - time.monotonic())
            ready, _, _ = select.select([self._conn], [], [], min(timeout, 1.0))
            if ready:
                self._conn.poll()
                if self._conn.notifies:
                    self._conn.notifies.clear()
                    self._run_duty(self.duties[0], force=True)

    def _run_duty(self, duty: Duty, force: bool = False):
        duty.due = time.monotonic() + duty.interval
        try:
            duty.run()
        except dbmod.DISCONNECTS:
            raise
        except Exception as e:  # one failed round must not stop the listener
            logger.error("%s failed: %s", duty.name, short_error(e, self.rt.redact), exc_info=True)

    def _close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None


def main() -> None:
    runtime.application_name = "media-publisher-listener"
    rt = runtime.process_runtime()
    # The listener only sends first steps, by actor name: it builds the broker the
    # workers use without declaring the actors (see lifecycle.send_step).
    listener = Listener(rt, setup_broker(rt.settings, runtime.process_runtime))

    def stop(signum, frame):
        logger.info("signal %s: stopping", signum)
        listener.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    listener.ops.serve()
    listener.ops.start_webhooks()
    listener.run()
    listener.ops.stop()

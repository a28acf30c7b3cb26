"""The job side of every step, as Dramatiq middleware.

Before a step runs it must own the job's current attempt (publisher_begin_step);
while it runs a heartbeat keeps its lease; when it ends the outcome is written
to the job at once. Whether a failed step is retried is decided here, from the
job's retry_count and max_retries, and carried out by Dramatiq's Retries
middleware (which runs after this one).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import dramatiq
from dramatiq.middleware import Middleware, MiddlewareError, SkipMessage

from . import metrics, queries
from .errors import PermanentError
from .logs import job_fields, short_error

logger = logging.getLogger("publisher.jobs")

#: The steps of a job, in order; actors of these names are job steps.
STAGES = ("fetch", "variant", "upload")


class StepNotStarted(MiddlewareError):
    """The database could not be asked whether this step may run; retried."""


class JobLifecycle(Middleware):
    def __init__(self, runtime_factory):
        self._runtime_factory = runtime_factory
        self._running: dict[tuple[int, str], float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    @property
    def runtime(self):
        return self._runtime_factory()

    # -- worker process -------------------------------------------------
    def after_worker_boot(self, broker, worker):
        self._stop.clear()
        self._heartbeat = threading.Thread(target=self._beat, name="job-heartbeat", daemon=True)
        self._heartbeat.start()

    def after_worker_shutdown(self, broker, worker):
        # Not before: on SIGTERM the running steps are still finishing, and
        # without a heartbeat their leases would run out and the jobs be
        # rescued from under them.
        self._stop.set()

    def _beat(self):
        lease = timedelta(seconds=self.runtime.settings.job_lease_seconds)
        interval = self.runtime.settings.job_lease_seconds / 4
        while not self._stop.wait(interval):
            with self._lock:
                running = list(self._running)
            if not running:
                continue
            try:
                with self.runtime.db.transaction() as cur:
                    queries.heartbeat(cur, running, lease)
            except Exception as e:  # the next beat tries again; the lease allows for a few misses
                logger.warning("heartbeat failed: %s", short_error(e, self.runtime.redact))

    # -- one message ----------------------------------------------------
    def before_process_message(self, broker, message):
        stage = message.actor_name
        if stage not in STAGES:
            return
        job_id, token = message.args[0], message.args[1]
        settings = self.runtime.settings
        try:
            with self.runtime.db.transaction() as cur:
                outcome = queries.begin_step(
                    cur, job_id, token, stage, timedelta(seconds=settings.job_lease_seconds)
                )
                context = queries.job_context(cur, job_id) if outcome == "run" else None
        except Exception as e:
            raise StepNotStarted(short_error(e, self.runtime.redact, f"could not start {stage}: ")) from None
        if outcome != "run":
            logger.info("job=%s stage=%s skipped: %s attempt", job_id, stage, outcome,
                        extra=job_fields(job_id, None, stage, event="skipped"))
            raise SkipMessage(outcome)
        message.options["job_started"] = time.monotonic()
        message.options["job_file_id"] = file_id = context["file_id"]
        if stage == STAGES[0] and context["retry_count"] == 0:
            metrics.queue_lag(context["since_insert"])
        with self._lock:
            self._running[(job_id, token)] = time.monotonic()
        logger.info("job=%s file=%s stage=%s started", job_id, file_id, stage,
                    extra=job_fields(job_id, file_id, stage, event="started"))

    def after_process_message(self, broker, message, *, result=None, exception=None):
        stage = message.actor_name
        if stage not in STAGES or "job_started" not in message.options:
            return  # not a job step, or it never started: Retries' defaults apply
        job_id, token = message.args[0], message.args[1]
        with self._lock:
            self._running.pop((job_id, token), None)
        elapsed = time.monotonic() - message.options.pop("job_started")
        file_id = message.options.pop("job_file_id", None)
        if exception is None:
            metrics.step_finished(stage, "done", elapsed, result)
            self._step_done(job_id, token, stage, result, elapsed, file_id)
        else:
            self._step_failed(message, job_id, token, stage, exception, elapsed, file_id)

    def _step_done(self, job_id, token, stage, result, elapsed, file_id=None):
        logger.info("job=%s file=%s stage=%s done in %.3fs", job_id, file_id, stage, elapsed,
                    extra=job_fields(job_id, file_id, stage, elapsed, event="done"))
        if stage == STAGES[-1]:
            return  # the last step finalizes the job itself, in one transaction
        settings = self.runtime.settings
        with self.runtime.db.transaction() as cur:
            owned = queries.end_step(
                cur, job_id, token, STAGES[STAGES.index(stage) + 1],
                timedelta(seconds=settings.job_handoff_seconds), result,
            )
        if not owned:
            logger.info("job=%s stage=%s finished for an attempt that was replaced", job_id, stage)

    def _step_failed(self, message, job_id, token, stage, exception, elapsed, file_id=None):
        permanent = isinstance(exception, PermanentError)
        error = short_error(exception, self.runtime.redact, f"{stage}: ")
        try:
            with self.runtime.db.transaction() as cur:
                error = _naming_the_file(error, queries.raid_key(cur, job_id))
                outcome = queries.record_failure(cur, job_id, token, error, permanent)
        except Exception as e:
            logger.error(
                "job=%s stage=%s failed (%s) and the failure could not be recorded: %s",
                job_id, stage, error, short_error(e, self.runtime.redact),
            )
            metrics.step_failed(stage, exception, "unrecorded")
            self._decide_retry(message, retry=not permanent)
            return
        metrics.step_finished(stage, outcome, elapsed)
        metrics.step_failed(stage, exception, outcome)
        log = logger.warning if outcome == "retry" else logger.error
        log("job=%s file=%s stage=%s %s after %.3fs: %s", job_id, file_id, stage,
            {"retry": "will retry", "failed": "failed for good", "stale": "failed (stale attempt)"}[outcome],
            elapsed, error, extra=job_fields(job_id, file_id, stage, elapsed, event=outcome, error=error))
        self._decide_retry(message, retry=outcome == "retry")
        if outcome == "failed":
            try:
                self.runtime.cleanup(job_id)
            except Exception as e:
                logger.warning("job=%s: cleanup failed: %s", job_id, short_error(e, self.runtime.redact))

    @staticmethod
    def _decide_retry(message, *, retry: bool):
        # Retries compares the message's retries with its max_retries.
        retries = message.options.get("retries", 0)
        message.options["max_retries"] = retries + 1 if retry else retries

    def after_enqueue(self, broker, message, delay):
        if delay and message.actor_name in STAGES and message.options.get("retries"):
            job_id, token = message.args[0], message.args[1]
            try:
                with self.runtime.db.transaction() as cur:
                    queries.schedule_retry(cur, job_id, token, timedelta(milliseconds=delay))
            except Exception as e:
                logger.warning("job=%s: could not record the next attempt time: %s",
                               job_id, short_error(e, self.runtime.redact))


def _naming_the_file(error: str, raid_key: str | None) -> str:
    """last_error must say which file is wrong; steps that do not name it get it appended."""
    if not raid_key or raid_key in error:
        return error
    return f"{error} (raid_key {raid_key!r})"


def enqueue_job(broker: dramatiq.Broker, job_id: int, token: str, stage: str) -> None:
    """Sends the remaining steps of a job, from `stage` on, as one Dramatiq pipeline."""
    steps = [broker.get_actor(name) for name in STAGES[STAGES.index(stage):]]
    dramatiq.pipeline(
        (actor.message_with_options(args=(job_id, token), pipe_ignore=True) for actor in steps),
        broker=broker,
    ).run()

"""The job side of every step, as Dramatiq middleware.

Before a step runs it must own the job's current attempt and stage
(publisher_begin_step); while it runs a heartbeat keeps its lease, up to the
step's time limit and a margin; when it ends, the outcome is written to the job
and only then is the next step sent, to this host's queue (publisher/jobs/locality.py).
Whether a failed step is retried is decided here, from the job's retry_count
and max_retries, and carried out by Dramatiq's Retries middleware (which runs
after this one). The state machine itself is SQL: sql/002_job_states.sql.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from datetime import timedelta

import dramatiq
from dramatiq.middleware import Middleware, MiddlewareError, SkipMessage


from publisher import telemetry
from publisher.jobs import handoff, host_faults, queries
from publisher.jobs.host_identity import host_id
from publisher.errors import PermanentError
from publisher.jobs.locality import QUEUE, host_queue, worker_id
from publisher.logs import job_fields, short_error
from publisher.stages import STAGES

logger = logging.getLogger("publisher.jobs")

#: Seconds between two sweeps of this host's scratch directory for folders of attempts that ended.
SCRATCH_SWEEP_SECONDS = 60.0


class StepNotStarted(MiddlewareError):
    """The database could not be asked whether this step may run; retried."""


@dataclasses.dataclass(frozen=True)
class RunningStep:
    stage: str
    #: time.monotonic() past which the step has outrun its time limit and margin.
    overdue_at: float


def time_limit_ms(settings) -> int:
    """Dramatiq's time limit of every step (a message option, read by its TimeLimit middleware)."""
    return settings.step_time_limit_seconds * 1000


def step_deadline(settings) -> timedelta:
    """How long a step's lease may be renewed: its time limit, and a lease more for the
    time limit to take effect. Past it the step is taken for stuck (native code that
    no time limit interrupts) and its job is rescued."""
    return timedelta(seconds=settings.step_time_limit_seconds + settings.job_lease_seconds)


def send_step(broker: dramatiq.Broker, stage: str, job_id: int, token: str, *, queue_name: str,
              settings, delay: timedelta | None = None) -> None:
    """Sends one step of a job's attempt to a queue: the shared one for a first step,
    the host's own for the steps after it. The message names its actor, so the
    sender (the listener) need not import the actors."""
    broker.enqueue(dramatiq.Message(queue_name=queue_name, actor_name=stage, args=(job_id, token), kwargs={},
                                    options={"time_limit": time_limit_ms(settings)}),
                   delay=int(delay.total_seconds() * 1000) if delay else None)


def send_first_step(broker: dramatiq.Broker, job_id: int, token: str, settings,
                    delay: timedelta | None = None) -> None:
    send_step(broker, STAGES[0], job_id, token, queue_name=QUEUE, settings=settings, delay=delay)


class JobLifecycle(Middleware):
    def __init__(self, runtime_factory):
        self._runtime_factory = runtime_factory
        self._running: dict[tuple[int, str], RunningStep] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._threads = 1
        self._worker_id = ""
        self._next_sweep = 0.0

    @property
    def runtime(self):
        return self._runtime_factory()

    # -- worker process -------------------------------------------------
    def after_worker_boot(self, broker, worker):
        self._threads = worker.worker_threads
        self.runtime.scratch  # an unsafe SCRATCH_DIR stops the worker here (ScratchDirUnsafe), before any step
        self._worker_id = worker_id(host_id(self.runtime.settings))
        self._stop.clear()
        self._heartbeat = threading.Thread(target=self._beat, name="job-heartbeat", daemon=True)
        self._heartbeat.start()

    def after_worker_shutdown(self, broker, worker):
        # Not before: on SIGTERM the running steps are still finishing, and
        # without a heartbeat their leases would run out and the jobs be
        # rescued from under them.
        self._stop.set()

    def _beat(self):
        interval = self.runtime.settings.job_lease_seconds / 4
        while True:
            try:
                self._beat_once()
            except Exception as e:  # the next beat tries again; the lease allows for a few misses
                logger.warning("heartbeat failed: %s", short_error(e, self.runtime.redact))
            if self._stop.wait(interval):
                return

    def _beat_once(self):
        rt = self.runtime
        with self._lock:
            running = list(self._running)
        host = host_id(rt.settings)
        # A host short of scratch space offers no threads: the listener claims no jobs for it.
        threads = 0 if host_faults.short_of_space(rt) else self._threads
        with rt.db.transaction() as cur:
            queries.worker_beat(cur, self._worker_id, host, host_queue(host), threads)
            if running:
                queries.heartbeat(cur, running, timedelta(seconds=rt.settings.job_lease_seconds))
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SCRATCH_SWEEP_SECONDS
            self._sweep_scratch()

    def _sweep_scratch(self):
        """Removes the scratch folders of attempts that are no longer current on this host."""
        rt = self.runtime
        listed = rt.scratch.attempts()
        if not listed:
            return
        with rt.db.transaction() as cur:
            current = queries.current_attempts(cur, listed, host_id(rt.settings))
        removed = rt.scratch.sweep(listed, current)
        if removed:
            logger.info("removed %d scratch folders of attempts that ended elsewhere or were replaced", removed)

    def stuck_step(self) -> str | None:
        """What /healthz reports: a step of this process running past its time limit and
        margin (stuck in native code): its lease is no longer renewed and its job is
        rescued, but its thread stays taken until the process is restarted."""
        now = time.monotonic()
        with self._lock:
            stuck = [(job, step) for (job, _), step in self._running.items() if now > step.overdue_at]
        if not stuck:
            return None
        job, step = stuck[0]
        return f"the {step.stage} step of job {job} has run past its time limit (stuck in native code?)"

    # -- one message ----------------------------------------------------
    def before_process_message(self, broker, message):
        stage = message.actor_name
        if stage not in STAGES:
            return
        job_id, token = message.args[0], message.args[1]
        settings = self.runtime.settings
        if stage == STAGES[0] and host_faults.short_of_space(self.runtime):
            self._decline_first_step(broker, job_id, token)
        try:
            with self.runtime.db.transaction() as cur:
                outcome = queries.begin_step(
                    cur, job_id, token, stage, timedelta(seconds=settings.job_lease_seconds),
                    host_id(settings), step_deadline(settings),
                )
                context = queries.job_context(cur, job_id) if outcome == "run" else None
        except Exception as e:
            raise StepNotStarted(short_error(e, self.runtime.redact, f"could not start {stage}: ")) from None
        if outcome != "run":
            logger.info("job=%s stage=%s skipped: %s attempt", job_id, stage, outcome,
                        extra=job_fields(job_id, None, stage, event="skipped"))
            raise SkipMessage(outcome)
        message.options["job_started"] = started = time.monotonic()
        message.options["job_file_id"] = file_id = context["file_id"]
        if stage == STAGES[0] and context["retry_count"] == 0:
            telemetry.queue_lag(context["since_insert"])
        with self._lock:
            self._running[(job_id, token)] = RunningStep(stage, started + step_deadline(settings).total_seconds())
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
            telemetry.step_finished(stage, "done", elapsed, result.traffic() if result is not None else None)
            self._step_done(broker, job_id, token, stage, handoff.to_json(result), elapsed, file_id)
        elif host_faults.is_host_fault(exception):
            self._start_over(broker, message, job_id, token, stage, exception, elapsed, file_id)
        else:
            self._step_failed(message, job_id, token, stage, exception, elapsed, file_id)

    def _decline_first_step(self, broker, job_id, token):
        """This host is short of scratch space: the fetch is put off and goes back to the
        shared queue, for another host or for this one once there is room."""
        rt = self.runtime
        try:
            deferred = host_faults.defer_first_step(rt, job_id, token)
        except Exception as e:
            raise StepNotStarted(short_error(e, rt.redact, "could not put off fetch: ")) from None
        if deferred:
            send_first_step(broker, job_id, token, rt.settings, delay=host_faults.put_off(rt))
            logger.info("job=%s stage=fetch put off: scratch below SCRATCH_MIN_FREE_MB", job_id,
                        extra=job_fields(job_id, None, "fetch", event="deferred"))
        raise SkipMessage("short of scratch space")

    def _start_over(self, broker, message, job_id, token, stage, exception, elapsed, file_id=None):
        """The host lost the attempt's files or has no room for them: not the job's failure."""
        self._decide_retry(message, retry=False)
        telemetry.step_finished(stage, "restarted", elapsed)
        try:
            outcome, new_token = host_faults.start_over(self.runtime, job_id, token, stage, exception, file_id)
        except Exception as e:
            # Nothing recorded: the lease runs out and the job is rescued.
            logger.error("job=%s stage=%s: %s, and starting the job over could not be recorded: %s", job_id,
                         stage, short_error(exception, self.runtime.redact), short_error(e, self.runtime.redact))
            telemetry.step_failed(stage, exception, "unrecorded")
            return
        telemetry.step_failed(stage, exception, outcome)
        if outcome == "restarted":
            send_first_step(broker, job_id, new_token, self.runtime.settings,
                            delay=host_faults.first_step_delay(self.runtime, exception))

    def _step_done(self, broker, job_id, token, stage, artifacts, elapsed, file_id=None):
        logger.info("job=%s file=%s stage=%s done in %.3fs", job_id, file_id, stage, elapsed,
                    extra=job_fields(job_id, file_id, stage, elapsed, event="done"))
        if stage == STAGES[-1]:
            return  # the last step finalizes the job itself, in one transaction
        next_stage = STAGES[STAGES.index(stage) + 1]
        settings = self.runtime.settings
        try:
            with self.runtime.db.transaction() as cur:
                owned = queries.end_step(cur, job_id, token, stage, next_stage, artifacts)
        except Exception as e:
            # The next step is not sent: its lease, no longer renewed, runs out and the
            # job is rescued, rather than the next step running on a job that never got there.
            logger.error("job=%s stage=%s finished but its end could not be recorded (%s); the %s step is "
                         "not sent and the job is rescued when its lease runs out", job_id, stage,
                         short_error(e, self.runtime.redact), next_stage,
                         extra=job_fields(job_id, file_id, stage, elapsed, event="unrecorded"))
            return
        if not owned:
            logger.info("job=%s stage=%s finished for an attempt that was replaced", job_id, stage)
            return
        send_step(broker, next_stage, job_id, token, queue_name=host_queue(host_id(settings)),
                  settings=settings)

    def _step_failed(self, message, job_id, token, stage, exception, elapsed, file_id=None):
        permanent = isinstance(exception, PermanentError)
        error = short_error(exception, self.runtime.redact, f"{stage}: ")
        try:
            with self.runtime.db.transaction() as cur:
                error = _naming_the_file(error, queries.raid_key(cur, job_id))
                outcome = queries.record_failure(cur, job_id, token, error, permanent,
                                                 telemetry.failure_reason(exception))
        except Exception as e:
            logger.error(
                "job=%s stage=%s failed (%s) and the failure could not be recorded: %s",
                job_id, stage, error, short_error(e, self.runtime.redact),
            )
            telemetry.step_failed(stage, exception, "unrecorded")
            self._decide_retry(message, retry=not permanent)
            return
        telemetry.step_finished(stage, outcome, elapsed)
        telemetry.step_failed(stage, exception, outcome)
        log = logger.warning if outcome == "retry" else logger.error
        log("job=%s file=%s stage=%s %s after %.3fs: %s", job_id, file_id, stage,
            {"retry": "will retry", "failed": "failed for good", "stale": "failed (stale attempt)"}[outcome],
            elapsed, error, extra=job_fields(job_id, file_id, stage, elapsed, event=outcome, error=error))
        self._decide_retry(message, retry=outcome == "retry")
        if outcome == "failed":
            self.runtime.scratch.remove(job_id, token)

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

"""The job side of every step, as Dramatiq middleware.

Before a step runs it must own the job's current attempt and stage (publisher_begin_step);
while it runs a heartbeat keeps its lease, up to the step's time limit and a margin
(publisher/jobs/heartbeat.py); when it ends, its result is recorded and, in the same
transaction, the next step begun on this host, which is then handed to this process's threads
(publisher/jobs/local_steps.py); the last step finalizes the job. Whether a failed step is
retried is what SQL recorded (publisher_record_failure): Dramatiq's Retries middleware, which
runs after this one, asks `retry_when`. Every call to the state machine is in
publisher/jobs/store/; the machine itself is SQL (sql/002_job_states.sql).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from dramatiq.middleware import Middleware, MiddlewareError, SkipMessage

from publisher import telemetry
from publisher.errors import PermanentError
from publisher.jobs import handoff, host_faults
from publisher.jobs.dispatch import lane_of, send_first_step, step_deadline, step_recorded
from publisher.jobs.heartbeat import Heartbeat, RunningStep, RunningSteps
from publisher.jobs.host_identity import host_id
from publisher.jobs.local_steps import LocalSteps
from publisher.jobs.locality import host_queue, worker_id
from publisher.jobs.store import finalize, steps
from publisher.jobs.store.states import Finalized, StartOver, StepFailure, StepStart
from publisher.logs import job_fields, short_error
from publisher.settings import fixed
from publisher.stages import STAGES

logger = logging.getLogger("publisher.jobs")


class _StepResultsAreRecorded(logging.Filter):
    """Drops Dramatiq's warning that a step's return value is discarded for want of a results backend:
    the lifecycle records it (after_process_message)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(message.startswith(f"Actor '{stage}' returned a value") for stage in STAGES)


class StepNotStarted(MiddlewareError):
    """The database could not be asked whether this step may run; retried."""


class JobLifecycle(Middleware):
    def __init__(self, runtime_factory, max_retries: int):
        self._runtime_factory = runtime_factory
        #: Retries' own rule for messages that are no job step (or never started one).
        self._max_retries = max_retries
        #: The retry decided for the exception this thread's step raised last.
        self._decided = threading.local()
        self._running = RunningSteps()
        #: Set by the heartbeat while an operator drains this host; read by every worker thread.
        self._host_drains = threading.Event()
        self._heartbeat: Heartbeat | None = None
        self._local = LocalSteps()

    @property
    def runtime(self):
        return self._runtime_factory()

    # -- worker process -------------------------------------------------
    def before_worker_boot(self, broker, worker):
        self._local.attach(broker, worker.work_queue)  # before any thread can end a step

    def after_worker_boot(self, broker, worker):
        rt = self.runtime
        _ = rt.scratch  # an unsafe SCRATCH_DIR stops the worker here (ScratchDirUnsafe), before any step
        logging.getLogger("dramatiq.worker.WorkerThread").addFilter(_StepResultsAreRecorded())
        self._heartbeat = Heartbeat(rt, self._running, self._host_drains, worker_id(host_id(rt.settings)),
                                    worker.worker_threads)
        self._heartbeat.start()

    def before_worker_shutdown(self, broker, worker):
        # The steps no thread has taken go back to the host's queue now, not only once the running steps
        # have ended: a stop that times out would leave them to the rescue.
        self._local.hand_back(self.runtime.db, self.runtime.redact)

    def after_worker_shutdown(self, broker, worker):
        # Not before: on SIGTERM the running steps are still finishing, and without a heartbeat
        # their leases would run out and the jobs be rescued from under them.
        self._local.hand_back(self.runtime.db, self.runtime.redact)  # those the last steps handed on
        if self._heartbeat is not None:
            self._heartbeat.stop()

    def stuck_step(self) -> str | None:
        """What /healthz reports: a step of this process running past its time limit and
        margin (stuck in native code): its lease is no longer renewed and its job is
        rescued, but its thread stays taken until the process is restarted."""
        return self._running.stuck()

    # -- one message ----------------------------------------------------
    def before_process_message(self, broker, message):
        stage = message.actor_name
        if stage not in STAGES:
            return
        job_id, token = message.args[0], message.args[1]
        if self._local.take(message):
            self._started(message, job_id, token, stage, message.file_id)  # begun when the step before it ended
            return
        if stage == STAGES[0]:
            declined = self._why_no_first_step()
            if declined:
                self._decline_first_step(broker, message, job_id, token, declined)
        try:
            with self.runtime.db.statement() as cur:
                outcome, context = steps.begin_step(cur, job_id, token, stage,
                                                    timedelta(seconds=fixed.JOB_LEASE_SECONDS),
                                                    host_id(self.runtime.settings), step_deadline())
        except Exception as e:
            raise StepNotStarted(short_error(e, self.runtime.redact, f"could not start {stage}: ")) from None
        if outcome is not StepStart.RUN:
            logger.info("job=%s stage=%s skipped: %s attempt", job_id, stage, outcome,
                        extra=job_fields(job_id, None, stage, event="skipped"))
            raise SkipMessage(outcome)
        if stage == STAGES[0] and context.retry_count == 0:
            telemetry.queue_lag(context.since_insert)
        self._started(message, job_id, token, stage, context.file_id)

    def _started(self, message, job_id, token, stage, file_id):
        message.options["job_started"] = started = time.monotonic()
        message.options["job_file_id"] = file_id
        self._running.add(job_id, token, RunningStep(stage, started + step_deadline().total_seconds()))
        logger.info("job=%s file=%s stage=%s started", job_id, file_id, stage,
                    extra=job_fields(job_id, file_id, stage, event="started"))

    def after_process_message(self, broker, message, *, result=None, exception=None):
        stage = message.actor_name
        if stage not in STAGES or "job_started" not in message.options:
            return  # not a job step, or it never started: Retries' defaults apply
        job_id, token = message.args[0], message.args[1]
        self._running.remove(job_id, token)
        elapsed = time.monotonic() - message.options.pop("job_started")
        file_id = message.options.pop("job_file_id", None)
        if exception is None:
            telemetry.step_finished(stage, "done", elapsed, result.traffic() if result is not None else None)
            if stage == STAGES[-1]:
                self._finalize(broker, message, job_id, token, result, elapsed, file_id)
            else:
                self._step_done(broker, message, job_id, token, stage, handoff.to_json(result), elapsed, file_id)
        elif host_faults.is_host_fault(exception):
            self._start_over(broker, message, job_id, token, stage, exception, elapsed, file_id)
        else:
            self._step_failed(message, job_id, token, stage, exception, elapsed, file_id)

    def _why_no_first_step(self) -> str | None:
        """Why this host begins no new job now (an operator drains it, its scratch is short of space);
        None: it begins them. The later steps of jobs it has begun go on."""
        if self._host_drains.is_set():
            return "this host drains"
        if host_faults.short_of_space(self.runtime):
            return "scratch below SCRATCH_MIN_FREE_MB"
        return None

    def _decline_first_step(self, broker, message, job_id, token, why: str):
        """This host begins no new job (`why`): the fetch is put off and goes back to the shared
        queue, for another host, or for this one once it begins jobs again."""
        rt = self.runtime
        try:
            deferred = host_faults.defer_first_step(rt, job_id, token)
        except Exception as e:
            raise StepNotStarted(short_error(e, rt.redact, "could not put off fetch: ")) from None
        if deferred:
            send_first_step(broker, job_id, token, delay=host_faults.put_off(rt), lane=lane_of(message.options))
            logger.info("job=%s stage=fetch put off: %s", job_id, why,
                        extra=job_fields(job_id, None, "fetch", event="deferred"))
        raise SkipMessage(why)

    def _start_over(self, broker, message, job_id, token, stage, exception, elapsed, file_id=None):
        """The host lost the attempt's files or has no room for them: not the job's failure."""
        self._decide_retry(exception, retry=False)
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
        if outcome is StartOver.RESTARTED:
            send_first_step(broker, job_id, new_token, delay=host_faults.first_step_delay(self.runtime, exception),
                            lane=lane_of(message.options))

    def _step_done(self, broker, message, job_id, token, stage, artifacts, elapsed, file_id=None):
        """The step's result recorded and the next step begun on this host, in one transaction; then
        the next step goes to this process's threads (publisher/jobs/local_steps.py)."""
        logger.info("job=%s file=%s stage=%s done in %.3fs", job_id, file_id, stage, elapsed,
                    extra=job_fields(job_id, file_id, stage, elapsed, event="done"))
        next_stage = STAGES[STAGES.index(stage) + 1]
        try:
            with step_recorded(self.runtime.db, broker, message) as cur:
                outcome = steps.pass_step(cur, job_id, token, stage, next_stage, artifacts,
                                          timedelta(seconds=fixed.JOB_LEASE_SECONDS), step_deadline())
        except Exception as e:
            # The next step is not begun: the lease, no longer renewed, runs out and the
            # job is rescued, rather than the next step running on a job that never got there.
            logger.error("job=%s stage=%s finished but its end could not be recorded (%s); the job is rescued "
                         "when its lease runs out", job_id, stage, short_error(e, self.runtime.redact),
                         extra=job_fields(job_id, file_id, stage, elapsed, event="unrecorded"))
            return
        if outcome is StepStart.STALE:
            logger.info("job=%s stage=%s finished for an attempt that was replaced", job_id, stage)
            return
        if outcome is StepStart.FAILED:
            logger.warning("job=%s: the file was deleted while the job ran; not published", job_id)
            self.runtime.scratch.remove(job_id, token)
            return
        self._running.add(job_id, token, RunningStep(next_stage, time.monotonic() + step_deadline().total_seconds()))
        queue = host_queue(host_id(self.runtime.settings))
        self._local.hand(next_stage, job_id, token, queue, lane_of(message.options), file_id)

    def _finalize(self, broker, message, job_id, token, published: handoff.Published, elapsed, file_id=None):
        """The last step's result: the job completed, the file published with its variants and
        imaging facts, in one transaction; then the attempt's scratch folder goes."""
        stage = STAGES[-1]
        rt = self.runtime
        logger.info("job=%s file=%s stage=%s done in %.3fs", job_id, file_id, stage, elapsed,
                    extra=job_fields(job_id, file_id, stage, elapsed, event="done"))
        try:
            with step_recorded(rt.db, broker, message) as cur:
                outcome = finalize.finalize(
                    cur, job_id, token, published.variants, published.source.width, published.source.height,
                    recipe=published.imaging.recipe, placeholder=published.imaging.placeholder,
                    dominant_color=published.imaging.dominant_color)
        except Exception as e:
            # Nothing recorded: the lease, no longer renewed, runs out and the job is rescued.
            logger.error("job=%s stage=%s published its objects but the job could not be finalized (%s); it is "
                         "rescued when its lease runs out", job_id, stage, short_error(e, rt.redact),
                         extra=job_fields(job_id, file_id, stage, elapsed, event="unrecorded"))
            return
        if outcome is Finalized.STALE:
            logger.info("job=%s was finalized by another attempt; nothing changed", job_id)
            return
        if outcome is Finalized.DELETED:
            logger.warning("job=%s: the file was deleted while the job ran; not published", job_id)
        rt.scratch.remove(job_id, token)

    def _step_failed(self, message, job_id, token, stage, exception, elapsed, file_id=None):
        permanent = isinstance(exception, PermanentError)
        error = short_error(exception, self.runtime.redact, f"{stage}: ")
        try:
            with self.runtime.db.transaction() as cur:
                error = steps.naming_the_file(error, steps.raid_key(cur, job_id))
                outcome = steps.record_failure(cur, job_id, token, error, permanent,
                                               telemetry.failure_reason(exception))
        except Exception as e:
            logger.error(
                "job=%s stage=%s failed (%s) and the failure could not be recorded: %s",
                job_id, stage, error, short_error(e, self.runtime.redact),
            )
            telemetry.step_failed(stage, exception, "unrecorded")
            self._decide_retry(exception, retry=not permanent)
            return
        telemetry.step_finished(stage, outcome, elapsed)
        telemetry.step_failed(stage, exception, outcome)
        log = logger.warning if outcome is StepFailure.RETRY else logger.error
        log("job=%s file=%s stage=%s %s after %.3fs: %s", job_id, file_id, stage,
            {StepFailure.RETRY: "will retry", StepFailure.FAILED: "failed for good",
             StepFailure.STALE: "failed (stale attempt)"}[outcome],
            elapsed, error, extra=job_fields(job_id, file_id, stage, elapsed, event=outcome, error=error))
        self._decide_retry(exception, retry=outcome is StepFailure.RETRY)
        if outcome is StepFailure.FAILED:
            self.runtime.scratch.remove(job_id, token)

    def _decide_retry(self, exception: BaseException, *, retry: bool) -> None:
        # Retries' after-hook runs next on this thread and asks retry_when about this exception.
        self._decided.outcome = (exception, retry)

    def retry_when(self, retries: int, exception: BaseException) -> bool:
        """Dramatiq's Retries asks whether to retry a failed message (its `retry_when`): a
        job step as recorded when it failed; any other message by Retries' own count."""
        decided = getattr(self._decided, "outcome", None)
        self._decided.outcome = None
        if decided is not None and decided[0] is exception:
            return decided[1]
        return retries < self._max_retries

    def after_enqueue(self, broker, message, delay):
        if delay and message.actor_name in STAGES and message.options.get("retries"):
            job_id, token = message.args[0], message.args[1]
            try:
                with self.runtime.db.transaction() as cur:
                    steps.schedule_retry(cur, job_id, token, timedelta(milliseconds=delay))
            except Exception as e:
                logger.warning("job=%s: could not record the next attempt time: %s",
                               job_id, short_error(e, self.runtime.redact))


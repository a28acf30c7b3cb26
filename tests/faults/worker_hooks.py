"""TEST-ONLY faults inside the real worker process.

Loaded by the fault suite only, as an extra module on the worker's command
line (`dramatiq actors tests.faults.worker_hooks ...`); production never
imports it (it lives under tests/ and the Procfile does not name it). It wraps
each step's function, and acts on files whose raid_key carries a marker:

- KILL_MARK: the worker process dies (os._exit, like the OOM killer) in the
  middle of the variant step of that file, every time it is tried.
- UPLOAD_FAILS_ONCE_MARK: the upload step fails (transiently) on the job's first attempt.
- FAILURE_NOT_RECORDED_MARK: the fetch step fails (transiently) on the job's first
  attempt, and the database is lost just when the worker records that failure.
- LEAK_MARK: the step raises an exception that quotes every secret the
  process knows, the way a careless library would (a URL with a password, a
  dump of request headers, the S3 key pair).
- END_STEP_FAILS_ONCE_MARK: recording the end of the fetch step fails once (the
  database is lost just then), on the job's first attempt.
- DELETED_WHILE_RUNNING_MARK: the file is soft-deleted (as the auction
  application would) while its upload step runs.
- HANG_MARK: the variant step hangs in native code (a libc sleep no time limit
  interrupts) on the job's first attempt.
- RESTART_AFTER_FETCH_MARK: once the fetch step has run, the worker's main process
  gets SIGTERM (a container restart: `docker restart`), once per FAULT_RESTART_ONCE_FILE.
- SYMLINK_MARK: before the upload step, the staged webp thumb in the attempt's
  folder is replaced by a symlink to the host file named by FAULT_SYMLINK_TARGET.
- SOURCE_SWAPPED_MARK: before the job's first variant step, the original in the
  attempt's folder is replaced by another image (FAULT_SWAPPED_SOURCE): a regular
  file of one link, under its name, holding other bytes.

Each injected fault writes a line `injected: <what> job=<id>` to the worker's
log, so a scenario can prove the fault fired.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
import threading

import psycopg2
from dramatiq.middleware import Middleware

import actors
from publisher.app.runtime import process_runtime
from publisher.errors import TransientError
from publisher.jobs.lifecycle import STAGES
from publisher.jobs.store import steps
from tests.faults.harness import (
    DELETED_WHILE_RUNNING_MARK,
    END_STEP_FAILS_ONCE_MARK,
    FAILURE_NOT_RECORDED_MARK,
    HANG_MARK,
    HANG_SECONDS,
    KILL_MARK,
    LEAK_MARK,
    RESTART_AFTER_FETCH_MARK,
    RESTART_ONCE_ENV,
    SOURCE_SWAPPED_MARK,
    SWAPPED_SOURCE_ENV,
    SYMLINK_MARK,
    SYMLINK_TARGET_ENV,
    UPLOAD_FAILS_ONCE_MARK,
)

#: Jobs whose next failure cannot be recorded.
_unrecordable: set[int] = set()
#: Set when this worker process begins to shut down.
_shutting_down = threading.Event()


class _ShutdownSeen(Middleware):
    def before_worker_shutdown(self, broker, worker):
        _shutting_down.set()


def _with_faults(stage: str, step):
    @functools.wraps(step)
    def faulty_step(job_id, token):
        rt = process_runtime()
        job = rt.load_job(job_id, token)
        key = job.raid_key
        if FAILURE_NOT_RECORDED_MARK in key and stage == "fetch" and job.retry_count == 0:
            _unrecordable.add(job_id)
            raise TransientError("origin reset the connection (injected by the fault suite)")
        if UPLOAD_FAILS_ONCE_MARK in key and stage == "upload" and job.retry_count == 0:
            raise TransientError("S3 answered 503 Slow Down (injected by the fault suite)")
        if KILL_MARK in key and stage == "variant":
            os._exit(137)
        if DELETED_WHILE_RUNNING_MARK in key and stage == "upload":
            with rt.db.transaction() as cur:
                cur.execute("UPDATE auction_files SET deleted_at = now() WHERE id = %s", (job.file_id,))
            _injected("file deleted", job_id)
        if HANG_MARK in key and stage == "variant" and job.retry_count == 0:
            _injected("native hang", job_id)
            ctypes.CDLL(None).sleep(HANG_SECONDS)
        if SYMLINK_MARK in key and stage == "upload":
            staged = os.path.join(rt.scratch.root, f"{job_id}-{token}", "thumb.webp")
            os.unlink(staged)
            os.symlink(os.environ[SYMLINK_TARGET_ENV], staged)
            _injected("staged file swapped for a symlink", job_id)
        if SOURCE_SWAPPED_MARK in key and stage == "variant" and _first_time(
                os.path.join(os.path.dirname(rt.scratch.root), f"source-swapped-{job_id}")):
            source = os.path.join(rt.scratch.root, f"{job_id}-{token}", "source")
            os.unlink(source)
            with open(os.environ[SWAPPED_SOURCE_ENV], "rb") as other, open(source, "wb") as swapped:
                swapped.write(other.read())
            _injected("original swapped after fetch", job_id)
        if LEAK_MARK in key:
            s = rt.settings
            raise RuntimeError(
                f"could not reach {s.database_url} while sending "
                f"{{'Authorization': 'Bearer {s.raid_publisher_secret}'}} "
                f"with S3 credentials {s.b2_key_id}:{s.b2_app_key}"
            )
        result = step(job_id, token)
        if RESTART_AFTER_FETCH_MARK in key and stage == "fetch" and _first_time(os.environ[RESTART_ONCE_ENV]):
            _injected("host restarted after fetch", job_id)
            os.kill(os.getppid(), signal.SIGTERM)  # the main process stops its workers gracefully
            # The step is still running when the shutdown begins: it finishes, and its next
            # step waits in the host's queue for a worker that comes back with an empty scratch.
            _shutting_down.wait(60)
        return result

    return faulty_step


def _first_time(flag: str) -> bool:
    try:
        os.close(os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _injected(what: str, job_id: int) -> None:
    print(f"injected: {what} job={job_id}", file=sys.stderr, flush=True)


def _pass_step(cur, job_id, token, stage, *args):
    # Read apart from the step's end, which is one statement of its own (Database.statement).
    with process_runtime().db.transaction() as own:
        key = steps.raid_key(own, job_id) or ""
        own.execute("SELECT retry_count FROM publish_jobs WHERE id = %s", (job_id,))
        first_attempt = own.fetchone()["retry_count"] == 0  # read from the job: any worker process may run it
    if END_STEP_FAILS_ONCE_MARK in key and stage == "fetch" and first_attempt:
        _injected("end_step failed", job_id)
        raise psycopg2.OperationalError("server closed the connection unexpectedly (injected by the fault suite)")
    return _real_pass_step(cur, job_id, token, stage, *args)


def _record_failure(cur, job_id, *args):
    if job_id in _unrecordable:
        _unrecordable.discard(job_id)
        _injected("failure not recorded", job_id)
        raise psycopg2.OperationalError("server closed the connection unexpectedly (injected by the fault suite)")
    return _real_record_failure(cur, job_id, *args)


_real_record_failure = steps.record_failure
steps.record_failure = _record_failure
_real_pass_step = steps.pass_step
steps.pass_step = _pass_step

for _stage in STAGES:
    _actor = actors.broker.get_actor(_stage)
    _actor.fn = _with_faults(_stage, _actor.fn)
actors.broker.add_middleware(_ShutdownSeen())

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
"""

from __future__ import annotations

import functools
import os

import actors
from publisher.lifecycle import STAGES
from publisher.runtime import worker_runtime
from publisher.errors import TransientError
import psycopg2

from publisher import queries
from tests.faults.harness import FAILURE_NOT_RECORDED_MARK, KILL_MARK, LEAK_MARK, UPLOAD_FAILS_ONCE_MARK

#: Jobs whose next failure cannot be recorded.
_unrecordable: set[int] = set()


def _with_faults(stage: str, step):
    @functools.wraps(step)
    def faulty_step(job_id, token):
        rt = worker_runtime()
        job = rt.load_job(job_id, token)
        key = job["raid_key"]
        if FAILURE_NOT_RECORDED_MARK in key and stage == "fetch" and job["retry_count"] == 0:
            _unrecordable.add(job_id)
            raise TransientError("origin reset the connection (injected by the fault suite)")
        if UPLOAD_FAILS_ONCE_MARK in key and stage == "upload" and job["retry_count"] == 0:
            raise TransientError("S3 answered 503 Slow Down (injected by the fault suite)")
        if KILL_MARK in key and stage == "variant":
            os._exit(137)
        if LEAK_MARK in key:
            s = rt.settings
            raise RuntimeError(
                f"could not reach {s.database_url} while sending "
                f"{{'Authorization': 'Bearer {s.raid_publisher_secret}'}} "
                f"with S3 credentials {s.b2_key_id}:{s.b2_app_key}"
            )
        return step(job_id, token)

    return faulty_step


def _record_failure(cur, job_id, *args):
    if job_id in _unrecordable:
        _unrecordable.discard(job_id)
        raise psycopg2.OperationalError("server closed the connection unexpectedly (injected by the fault suite)")
    return _real_record_failure(cur, job_id, *args)


_real_record_failure = queries.record_failure
queries.record_failure = _record_failure

for _stage in STAGES:
    _actor = actors.broker.get_actor(_stage)
    _actor.fn = _with_faults(_stage, _actor.fn)

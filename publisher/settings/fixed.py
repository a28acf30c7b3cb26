"""Values that are not settings, each with its reason: no deployment has had a reason
to change them, and each is tied to others (a lease to the rescue that waits for it,
a timeout to the size it bounds). Changing one is a code change, reviewed and tested.

The test suite runs the real processes with shorter times: PUBLISHER_TEST_FIXED, a JSON
object naming constants of this module, replaces them at import (tests/support/stack.py).
It is not a setting: never set it in a deployment.
"""

from __future__ import annotations

import json
import os

# -- leases and hand-offs (the job core) ------------------------------------------
#: A step with no heartbeat this long is presumed dead and rescued; a worker host none of whose
#: processes beat this long is presumed lost; a transaction idle this long is ended by PostgreSQL.
#: A minute: four heartbeats (every quarter lease) may be missed before a live step is doubted.
JOB_LEASE_SECONDS = 60
#: A job's message untouched in a queue this long is presumed lost and handed out again (no retry
#: charged). Far above a burst's queueing time, so a busy queue is never taken for a lost one.
JOB_HANDOFF_SECONDS = 900
#: Dramatiq's time limit of a step; past it and one lease more, the step's lease is no longer
#: renewed (stuck in native code). Far above any render, so only a stuck step reaches it.
STEP_TIME_LIMIT_SECONDS = 1800
#: The listener claims at most this many not-yet-started jobs per live worker thread: one
#: running and one waiting keeps a thread busy; more would sit in a queue a lost host takes with it.
QUEUED_JOBS_PER_THREAD = 2
#: A job that starts frees room for another without telling the listener (a NOTIFY per start cost a
#: claim per job). After a claim that took jobs the listener claims again this many seconds later;
#: while jobs wait for room, as late as the room has been full, up to its sweep. A thread that has
#: started its waiting job (QUEUED_JOBS_PER_THREAD) then gets the next one before it has finished it.
CLAIM_REFILL_SECONDS = 0.02
#: In a worker's queue, a step of the retry lane handed on inside the process lets the fresh lots that
#: arrive up to this many seconds after it go first; a step of the backlog twice as long, a first step
#: twice as long again (dispatch.OrderedStep). A fresh lot starts ahead of the lower lanes' waiting
#: steps, and a stream of fresh lots holds each such step, with its job's scratch files and lease, no
#: longer than that.
LANE_YIELD_SECONDS = 5
#: A worker host silent this long is gone for good: its heartbeat rows and queue are removed.
#: A day outlasts any maintenance window, so a host back from one keeps its queue.
WORKER_HOST_EXPIRY_SECONDS = 86400

# -- retries ------------------------------------------------------------------------
#: First and largest wait between retries of a failed step (Dramatiq's exponential backoff):
#: 5 s lets a blip pass; 10 minutes bounds the wait of MAX_RETRIES retries to about half an hour.
RETRY_MIN_BACKOFF_MS = 5000
RETRY_MAX_BACKOFF_MS = 600_000

# -- the origin -----------------------------------------------------------------------
#: A download is cut off past this many bytes: far above any photo, and it bounds the scratch
#: space a job takes (SCRATCH_MIN_FREE_MB is sized against it).
MAX_SOURCE_BYTES = 200 * 1024 * 1024
#: Seconds to connect to the origin, and between two received bytes.
ORIGIN_CONNECT_TIMEOUT = 5.0
ORIGIN_READ_TIMEOUT = 60.0
#: The slowest origin a whole download waits for, and the time added for the answer to start:
#: a download slower than this ties up a worker thread.
MIN_DOWNLOAD_BYTES_PER_SECOND = 1024 * 1024
DOWNLOAD_START_SECONDS = 60
#: Seconds a whole download may take: the largest source at the slowest rate.
ORIGIN_DOWNLOAD_TIMEOUT = DOWNLOAD_START_SECONDS + MAX_SOURCE_BYTES / MIN_DOWNLOAD_BYTES_PER_SECOND

# -- the bucket -------------------------------------------------------------------------
#: Key prefix of published variants: the CDN's paths and the purge of old objects depend on it.
OBJECT_PREFIX = "media/"

# -- the listener's rounds ------------------------------------------------------------
#: Seconds between two reads of the job table for the listener's gauges: Prometheus scrapes
#: every 15 s, so a shorter interval reads rows no one sees.
METRICS_INTERVAL = 15.0
#: /healthz of the listener fails when its loop has not turned this long: two missed sweeps
#: and more, so only a stuck loop fails it.
LISTENER_STALL_SECONDS = 120.0
#: Seconds between two maintenance rounds: each round deletes in small batches, so an hour
#: keeps every batch small without keeping PostgreSQL busy.
MAINTENANCE_INTERVAL = 3600.0
#: Seconds one webhook POST may take, all of it, before it counts as failed and is tried later.
PUBLISH_WEBHOOK_TIMEOUT = 10.0

# -- retention (maintenance) ----------------------------------------------------------
#: Completed jobs are kept 90 days, so questions about a sale's media can still be answered.
COMPLETED_JOB_RETENTION_DAYS = 90.0
#: Files soft-deleted longer ago than this are purged, objects included: a month to undo a deletion.
DELETED_FILE_RETENTION_DAYS = 30.0
#: Broker rows done or rejected are kept a day, for looking into a bad day.
BROKER_RETENTION_HOURS = 24.0
#: A delivered (or given-up) completion event stays a week in the outbox.
EVENT_RETENTION_DAYS = 7.0
#: The job history (publish_job_events) is kept as long as the jobs it tells of.
JOB_EVENT_RETENTION_DAYS = 90.0
#: An object no file publishes stays a week in the bucket: longer than the CDN caches it.
SUPERSEDED_OBJECT_GRACE_DAYS = 7.0

TEST_OVERRIDES = "PUBLISHER_TEST_FIXED"


def _apply_test_overrides() -> None:
    raw = os.environ.get(TEST_OVERRIDES)
    if not raw:
        return
    overrides = json.loads(raw)
    unknown = [name for name in overrides if not name.isupper() or name not in globals()]
    if unknown:
        raise SystemExit(f"media-publisher: {TEST_OVERRIDES} names no constant: {', '.join(unknown)}")
    globals().update({name: type(globals()[name])(value) for name, value in overrides.items()})
    if "MAX_SOURCE_BYTES" in overrides and "ORIGIN_DOWNLOAD_TIMEOUT" not in overrides:
        globals()["ORIGIN_DOWNLOAD_TIMEOUT"] = \
            DOWNLOAD_START_SECONDS + MAX_SOURCE_BYTES / MIN_DOWNLOAD_BYTES_PER_SECOND


_apply_test_overrides()

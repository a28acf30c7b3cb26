"""Locality: every step of a job runs on the worker host that ran its fetch.

Each worker host has an id (the hostname and an id kept in its scratch
directory: publisher/jobs/host_identity.py) and a queue of its own. A job's
first step travels on the shared queue and runs on any host; its later steps
run in the process that fetched it (publisher/jobs/local_steps.py), and their
retries, or a step handed back by a stopping process, travel on the queue of the
host that fetched it, so the original and the variants pass between the steps in
that host's scratch directory and never through the bucket. Every worker
process consumes both queues, and beats in `publisher_workers`, from which the
listener learns which hosts are alive and how many jobs they can start.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from datetime import timedelta

from dramatiq.middleware import Middleware

from publisher.jobs import host_identity
from publisher.settings import fixed

#: The shared queue: first steps, taken by any worker host.
QUEUE = "publish"
#: A host's queue is this prefix and the host id.
HOST_QUEUE_PREFIX = "publish-host-"
#: Characters of the host id kept in its queue name. dramatiq-pg LISTENs on
#: "dramatiq.<queue>.DQ.enqueue", and PostgreSQL channel names hold 63 bytes.
HOST_QUEUE_ID_CHARS = 30


def host_alive() -> timedelta:
    """How long a worker host counts as alive after its last beat: one lease. Past it the
    listener claims nothing for it and hands its jobs out again, its queue's messages are
    not announced again, and the overview shows it silent (the listener hands this to
    SQL: listener/settings_sync.py)."""
    return timedelta(seconds=fixed.JOB_LEASE_SECONDS)


def host_queue(host_id: str) -> str:
    """The queue of a worker host. A host id that does not fit as it is gets a digest,
    so that two long host names sharing a prefix still get queues of their own."""
    part = re.sub(r"[^A-Za-z0-9_-]", "-", host_id)
    if part != host_id or len(part) > HOST_QUEUE_ID_CHARS:
        digest = hashlib.sha256(host_id.encode()).hexdigest()[:8]
        part = f"{part[:HOST_QUEUE_ID_CHARS - 9]}-{digest}"
    return HOST_QUEUE_PREFIX + part


def is_host_queue(queue_name: str) -> bool:
    return queue_name.startswith(HOST_QUEUE_PREFIX)


def worker_id(host_id: str) -> str:
    """Names one worker process for its heartbeat row: host, pid and start time (pids are reused)."""
    return f"{host_id}:{os.getpid()}:{time.time_ns() // 1_000_000}"


class HostQueue(Middleware):
    """Every worker process consumes its host's queue, also when `--queues` names only others."""

    def __init__(self, settings):
        self._settings = settings

    def before_worker_boot(self, broker, worker):
        # Here, not at import: only a worker process names its host (its scratch directory).
        self.queue = host_queue(host_identity.host_id(self._settings))
        if worker.consumer_whitelist:
            worker.consumer_whitelist.add(self.queue)
        broker.declare_queue(self.queue)

"""The clients a process builds once from its configuration and shares between threads."""

from __future__ import annotations

import functools

from publisher import logs
from publisher.clients.db import Database
from publisher.clients.origin import OriginClient
from publisher.clients.storage import Storage
from publisher.errors import StaleAttempt
from publisher.jobs.scratch import Scratch
from publisher.jobs.store import steps
from publisher.jobs.store.rows import StepJob
from publisher.settings import fixed
from publisher.settings.job import Settings, load_settings, or_exit


class Runtime:
    def __init__(self, settings: Settings, application_name: str):
        self.settings = settings
        self.redact = logs.configure(settings.log_level, settings.secrets, settings.log_format)
        # A transaction idle for a whole lease is held by a lost process: the server ends it.
        self.db = Database(settings.database_url, application_name, maxconn=settings.concurrency + 4,
                           idle_transaction_timeout_s=fixed.JOB_LEASE_SECONDS)
        self.storage = Storage(settings)
        self.origin = OriginClient.from_settings(settings)

    @functools.cached_property
    def scratch(self) -> Scratch:
        # Made on first use, by a worker only: the listener and publisher-admin, which may
        # run as other users, must neither make the worker's scratch directory nor be refused it.
        return Scratch(self.settings.scratch_dir)

    def load_job(self, job_id: int, token: str) -> StepJob:
        with self.db.transaction() as cur:
            job = steps.load_job(cur, job_id, token)
        if job is None:
            raise StaleAttempt(f"job {job_id} was taken over by a newer attempt")
        return job


def settings_or_exit() -> Settings:
    """The validated settings; on a bad environment, one clear message and exit status 2."""
    return or_exit(load_settings)


#: How this process names itself to PostgreSQL (pg_stat_activity.application_name);
#: the listener names itself before its first use of the runtime.
application_name = "media-publisher-worker"


@functools.lru_cache(maxsize=1)
def process_runtime() -> Runtime:
    """This process's runtime (a worker's or the listener's), built on first use:
    in a worker, when it boots or runs its first step."""
    return Runtime(settings_or_exit(), application_name)

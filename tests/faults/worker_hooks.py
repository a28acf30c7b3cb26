"""TEST-ONLY faults inside the real worker process.

Loaded by the fault suite only, as an extra module on the worker's command
line (`dramatiq actors tests.faults.worker_hooks ...`); production never
imports it (it lives under tests/ and the Procfile does not name it). It adds
one middleware that acts on files whose raid_key carries a marker:

- KILL_MARK: the worker process dies (os._exit, like the OOM killer) as soon
  as the variant step of that file has started, every time it is tried.
- LEAK_MARK: the step raises an exception that quotes every secret the
  process knows, the way a careless library would (a URL with a password, a
  dump of request headers, the S3 secret key).
"""

from __future__ import annotations

import os

from dramatiq.middleware import Middleware

import actors
from publisher.lifecycle import STAGES
from publisher.runtime import worker_runtime
from tests.faults.harness import KILL_MARK, LEAK_MARK


class FaultHooks(Middleware):
    def before_process_message(self, broker, message):
        # Runs after JobLifecycle's hook: the step has started and holds its lease.
        if message.actor_name not in STAGES or "job_started" not in message.options:
            return
        rt = worker_runtime()
        job = rt.load_job(message.args[0], message.args[1])
        key = job["raid_key"]
        if KILL_MARK in key and message.actor_name == "variant":
            os._exit(137)
        if LEAK_MARK in key:
            s = rt.settings
            raise RuntimeError(
                f"could not reach {s.database_url} while sending "
                f"{{'Authorization': 'Bearer {s.raid_publisher_secret}'}} "
                f"with S3 credentials {s.b2_key_id}:{s.b2_app_key}"
            )


actors.broker.add_middleware(FaultHooks())

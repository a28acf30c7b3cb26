"""The job steps, one module each: fetch -> variant -> upload (publisher/stages.py).

`dramatiq actors` imports this package: it declares the three actors on the
broker that publisher/app/broker.py picks from the settings. Nothing else is
built here: the runtime (database pool, S3 and origin clients) is built on
first use, in a worker process.

Every step runs inside the job lifecycle (publisher/jobs/lifecycle.py, a
Dramatiq middleware): before_process_message begins the step (the job's state
moves to the step; a stale attempt is skipped), after_process_message ends it
(its result is merged into the job's artifacts and the next step begun and handed on) or
records its failure (retried or failed for good).
"""

from publisher import logs
from publisher.app.broker import setup_broker
from publisher.app.runtime import process_runtime, settings_or_exit

settings = settings_or_exit()
# Log lines are redacted and formatted from the start, before the runtime exists.
logs.configure_for(settings)
broker = setup_broker(settings, process_runtime)

from . import fetch, upload, variant  # noqa: E402  (actors need the broker first)

__all__ = ["broker", "fetch", "variant", "upload"]

"""The job steps, one module each: fetch -> variant -> upload.

`dramatiq actors` imports this package: it configures the broker from the
environment and declares the three actors on it.
"""

from publisher.app.broker import setup_broker
from publisher.app.runtime import worker_runtime

broker = setup_broker(worker_runtime(), worker_runtime)

from . import fetch, upload, variant  # noqa: E402  (actors need the broker first)

__all__ = ["broker", "fetch", "variant", "upload"]

"""`python -m listener`: LISTENs for runnable jobs and enqueues their steps, and
runs the listener's services, each in its own module with its own config:

- claim: pending jobs, as far as the live workers have room (on every NOTIFY,
  every (re)connect, every WORKER_POLL_INTERVAL ms, and sooner while jobs wait
  for room that starting jobs free);
- rescue: jobs whose step, host or message was lost;
- reannounce: broker messages workers would miss (PostgreSQL broker only);
- maintenance: retention and purges (MAINTENANCE_INTERVAL; 0: none);
- outbox: webhook delivery (only with PUBLISH_WEBHOOK_URL);
- settings sync: what plain SQL reads of this service's settings;
- gauges: the counts /metrics shows (endpoints: /metrics, /healthz, /readyz).

The claim, the rescue and the settings sync run on the loop's thread; the services whose rounds
read at length (reannounce, maintenance, outbox, gauges) in threads of their own, so that a
NOTIFY's claim never waits for one of them.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from publisher.app import runtime
from publisher.app.broker import setup_broker, uses_postgres_broker
from publisher.observability.prometheus import ListenerMetrics
from publisher.settings import fixed
from publisher.settings.ops import ops_settings_or_exit

from .claim import Claim
from .endpoints import Endpoints
from .gauges import Gauges
from .loop import Loop
from .maintenance import Maintenance, MaintenanceConfig
from .outbox import OutboxConfig, OutboxDelivery
from .reannounce import Reannounce, ReannounceConfig
from .rescue import Rescue
from .settings_sync import SettingsSync, SharedSettings

logger = logging.getLogger("publisher.listener")


def services(rt, broker, ops, metrics, stop: threading.Event) -> tuple[Claim, SettingsSync, list]:
    """The claim, the settings sync, and every service the loop runs on its interval."""
    claim = Claim(rt, broker, stop)
    sync = SettingsSync(rt.db, SharedSettings.from_settings(rt.settings, ops))
    scheduled = [claim, Rescue(rt, broker, stop), sync,
                 Gauges(rt.db, metrics, fixed.METRICS_INTERVAL, bool(ops.webhook_url)),
                 Maintenance(rt.db, rt.storage, MaintenanceConfig.from_constants(), rt.redact, metrics)]
    if uses_postgres_broker(broker):  # RabbitMQ redelivers by itself
        scheduled.append(Reannounce(rt.db, ReannounceConfig.from_constants()))
    if ops.webhook_url:
        scheduled.append(OutboxDelivery(rt.settings.database_url, OutboxConfig.from_settings(ops), rt.redact, stop))
    return claim, sync, scheduled


def main() -> None:
    runtime.application_name = "media-publisher-listener"
    rt = runtime.process_runtime()
    ops = ops_settings_or_exit()
    rt.redact.extend(ops.secrets)  # the webhook's URL and secret
    # The listener is one process: its metrics live in its own memory.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    metrics = ListenerMetrics()
    # The listener only sends first steps, by actor name: it builds the broker the
    # workers use without declaring the actors (publisher/jobs/dispatch.py).
    broker = setup_broker(rt.settings, runtime.process_runtime)
    stop = threading.Event()
    claim, sync, scheduled = services(rt, broker, ops, metrics, stop)
    loop = Loop(rt.settings.database_url, services=scheduled, on_connect=[sync, claim], on_notify=claim, stop=stop,
                redact=rt.redact)
    endpoints = Endpoints(rt, ops, metrics, lambda: loop.last_turn)

    def on_signal(signum, frame):
        logger.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    endpoints.start()
    loop.run()
    endpoints.stop()


if __name__ == "__main__":
    main()

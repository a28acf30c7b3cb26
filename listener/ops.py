"""The listener's operations side: its gauges, its maintenance duty, and its
/metrics, /healthz and /readyz endpoints (LISTENER_HTTP_PORT)."""

from __future__ import annotations

import logging
import os
import threading
import time

from publisher.jobs import queries
from publisher.observability.health import HealthServer, readiness_checks
from publisher.ops.maintenance import Maintenance, MaintenanceError
from publisher.observability.prometheus import ListenerMetrics
from publisher.settings.ops import ops_settings_or_exit

logger = logging.getLogger("publisher.listener")


class ListenerOps:
    def __init__(self, listener):
        # The listener is one process: its metrics live in its own memory.
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.listener = listener
        self.ops_settings = ops_settings_or_exit()
        self.metrics = ListenerMetrics()
        rt = listener.rt
        rt.redact.extend(self.ops_settings.secrets)  # the webhook's URL and secret
        self.maintenance = Maintenance(rt.db, rt.storage, rt.settings, self.ops_settings, rt.redact)
        self.server: HealthServer | None = None
        self._maintaining: threading.Thread | None = None

    def duties(self, duty_class) -> list:
        duties = [duty_class("metrics", self.ops_settings.metrics_interval, self.collect)]
        if self.ops_settings.maintenance_interval:
            duties.append(duty_class("maintenance", self.ops_settings.maintenance_interval, self.maintain))
        return duties

    def start_webhooks(self) -> None:
        """Delivers completion events when PUBLISH_WEBHOOK_URL is set (the listener tells
        the database whether to keep outbox rows: _save_settings)."""
        from .webhooks import WebhookDelivery

        if self.ops_settings.webhook_url:
            rt = self.listener.rt
            WebhookDelivery(rt.settings.database_url, self.ops_settings, rt.redact, self.listener.stop).start()

    def collect(self) -> None:
        from .webhooks import outbox_backlog

        with self.listener.rt.db.transaction() as cur:
            self.metrics.record_status(queries.status_snapshot(cur, failures=0, count_completed=False))
            if self.ops_settings.webhook_url:
                self.metrics.record_outbox(outbox_backlog(cur))

    def maintain(self) -> None:
        """Starts a maintenance round in a thread of its own: purging thousands of rows
        or objects must not hold up the NOTIFY loop. A round still running is not doubled."""
        if self._maintaining is not None and self._maintaining.is_alive():
            logger.info("maintenance: the previous round is still running")
            return
        self._maintaining = threading.Thread(target=self._maintenance_round, name="maintenance", daemon=True)
        self._maintaining.start()

    def _maintenance_round(self) -> None:
        try:
            removed = self.maintenance.run()
        except MaintenanceError:  # the parts logged their errors; the next round tries again
            self.metrics.maintenance_runs.labels("error").inc()
            return
        except Exception as e:
            self.metrics.maintenance_runs.labels("error").inc()
            logger.error("maintenance failed: %s", self.listener.rt.redact(str(e)), exc_info=True)
            return
        self.metrics.maintenance_runs.labels("ok").inc()
        for what, n in removed.items():
            self.metrics.maintenance_deleted.labels(what).inc(n)

    # -- endpoints ----------------------------------------------------------
    def serve(self) -> None:
        if not self.ops_settings.listener_port:
            return
        rt = self.listener.rt
        try:
            self.server = HealthServer(self.ops_settings.http_host, self.ops_settings.listener_port, alive=self.alive,
                                       ready=readiness_checks(rt.settings), metrics=self.metrics.exposition,
                                       redact=rt.redact).start()
        except OSError as e:  # the listener's real work goes on without its endpoints
            logger.error("listener endpoints not started on %s:%s: %s", self.ops_settings.http_host,
                         self.ops_settings.listener_port, e)
            return
        logger.info("listener metrics and health on http://%s:%s/ (metrics, healthz, readyz)",
                    self.ops_settings.http_host, self.server.port)

    def alive(self) -> str | None:
        """Unhealthy when the loop has not turned for LISTENER_STALL_SECONDS (a duty hangs)."""
        idle = time.monotonic() - self.listener.last_turn
        if idle > self.ops_settings.listener_stall_seconds:
            return f"the listener loop has not turned for {idle:.0f}s"
        return None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

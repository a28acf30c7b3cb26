"""The listener's /metrics, /healthz and /readyz (LISTENER_HTTP_PORT)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from publisher.observability.health import HealthServer, readiness_checks
from publisher.settings import fixed

logger = logging.getLogger("publisher.listener")


class Endpoints:
    def __init__(self, rt, ops, metrics, last_turn: Callable[[], float]):
        self.rt, self.ops, self.metrics, self.last_turn = rt, ops, metrics, last_turn
        self.server: HealthServer | None = None

    def start(self) -> None:
        if not self.ops.listener_port:
            return
        try:
            self.server = HealthServer(self.ops.http_host, self.ops.listener_port, alive=self.alive,
                                       ready=readiness_checks(self.rt.settings), metrics=self.metrics.exposition,
                                       redact=self.rt.redact).start()
        except OSError as e:  # the listener's real work goes on without its endpoints
            logger.error("listener endpoints not started on %s:%s: %s", self.ops.http_host, self.ops.listener_port, e)
            return
        logger.info("listener metrics and health on http://%s:%s/ (metrics, healthz, readyz)",
                    self.ops.http_host, self.server.port)

    def alive(self) -> str | None:
        """Unhealthy when the loop has not turned for LISTENER_STALL_SECONDS (a service hangs)."""
        idle = time.monotonic() - self.last_turn()
        if idle > fixed.LISTENER_STALL_SECONDS:
            return f"the listener loop has not turned for {idle:.0f}s"
        return None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

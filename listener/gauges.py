"""Gauges: the job and broker counts the listener's /metrics shows, read every
METRICS_INTERVAL (and the outbox backlog while a webhook is set)."""

from __future__ import annotations

from publisher.jobs.store import outbox, overview


class Gauges:
    name = "metrics"
    #: Counting every job by status takes tens of milliseconds on a year's history: off the loop's
    #: thread, so that a NOTIFY's claim never waits for it.
    in_background = True

    def __init__(self, db, metrics, interval: float, webhook: bool):
        self.db, self.metrics, self.interval, self.webhook = db, metrics, interval, webhook

    def run_once(self) -> None:
        with self.db.transaction() as cur:
            self.metrics.record_status(overview.status_snapshot(cur, failures=0, count_completed=False))
            if self.webhook:
                self.metrics.record_outbox(outbox.backlog(cur))

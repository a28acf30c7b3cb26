"""Outbox delivery (PUBLISH_WEBHOOK_URL): events that ended jobs wrote to the
outbox (sql/010_publish_events.sql) are POSTed, signed, in a thread of their own
with a database connection of their own, so a slow or dead receiver holds up
neither the NOTIFY loop, nor its claims, nor any job. At least once: an event is
marked delivered only after a 2xx, and a crash between the two sends it again,
with the same event id."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from datetime import timedelta

from publisher.clients.db import Database
from publisher.clients.webhook import WebhookClient
from publisher.jobs.store import outbox
from publisher.logs import bounded, url_origin
from publisher.settings import fixed

logger = logging.getLogger("publisher.listener")

#: Events taken per round, held (leased) until the round could have sent them all:
#: another listener takes an event only once no POST of it can still be under way.
BATCH = 20
#: Seconds a POST may take past its deadline (PUBLISH_WEBHOOK_TIMEOUT), recording its
#: outcome included: the deadline covers the whole exchange, this only the work around it.
POST_MARGIN = 5.0
#: Backoff between tries: 5 s, doubling, at most an hour; given up after this many (about 2 days).
FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS, MAX_ATTEMPTS = 5.0, 3600.0, 60


@dataclasses.dataclass(frozen=True)
class OutboxConfig:
    url: str
    secret: str = dataclasses.field(repr=False)
    timeout: float
    #: Seconds between two looks at the outbox when it had nothing due.
    interval: float = 1.0

    @classmethod
    def from_settings(cls, ops) -> OutboxConfig:
        return cls(ops.webhook_url, ops.webhook_secret, fixed.PUBLISH_WEBHOOK_TIMEOUT)


class OutboxDelivery:
    name = "outbox"
    #: A receiver may be slow: never on the NOTIFY loop's thread (listener/loop.py).
    in_background = True

    def __init__(self, database_url: str, config: OutboxConfig, redact, stop: threading.Event):
        self.config, self.redact, self.stop = config, redact, stop
        self.interval = config.interval
        # Its own connection: a round waiting on a receiver never takes one the claims need.
        self.db = Database(database_url, "media-publisher-webhooks", maxconn=1)
        self.client = WebhookClient(config.url, config.secret, config.timeout)
        # scheme://host[:port] only: the rest of a webhook URL may be its credential.
        logger.info("webhook: delivering completion events to %s", url_origin(config.url))

    def run_once(self) -> int:
        """Delivers what is due until nothing is; how many events were tried."""
        total = 0
        while not self.stop.is_set():
            sent = self.deliver_due()
            total += sent
            if not sent:
                break
        return total

    def deliver_due(self) -> int:
        longest_post = self.config.timeout + POST_MARGIN
        lease = longest_post * BATCH
        taken = time.monotonic()  # before the lease starts: its end is judged early, never late
        with self.db.transaction() as cur:
            due = outbox.take(cur, BATCH, timedelta(seconds=lease))
        for sent, event in enumerate(due):
            if time.monotonic() - taken + longest_post > lease:
                # A slow database, say: the rest would be sent past their lease, maybe
                # while another listener sends them too. They are taken again once it ends.
                return sent
            error = self.client.post(event.payload)
            attempts = event.attempts + 1
            retry_in = None if error is None or attempts >= MAX_ATTEMPTS else timedelta(
                seconds=min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** (attempts - 1)))
            if error is not None:
                error = bounded(error, self.redact)
                logger.warning("webhook: event %s (job %s) not delivered, try %s: %s%s", event.event_id,
                               event.payload.get("job_id"), attempts, error,
                               "" if retry_in else "; giving up")
            with self.db.transaction() as cur:
                outbox.record(cur, event.id, error is None, error, retry_in)
        return len(due)

"""The listener's webhook delivery (PUBLISH_WEBHOOK_URL): events that ended jobs
wrote to the outbox (sql/010_publish_events.sql) are POSTed, signed, in a thread
of their own with a database connection of its own, so a slow or dead receiver
holds up neither the NOTIFY loop, nor its claims, nor any job. At least once:
an event is marked delivered only after a 2xx, and a crash between the two sends
it again, with the same event id."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from publisher.clients.db import Database
from publisher.logs import bounded, short_error, url_origin
from publisher.clients.webhook import WebhookClient

logger = logging.getLogger("publisher.listener")

#: Events taken per round, held (leased) until the round could have sent them all:
#: another listener takes an event only once no POST of it can still be under way.
BATCH = 20
#: Seconds a POST may take past its deadline (PUBLISH_WEBHOOK_TIMEOUT), recording its
#: outcome included: the deadline covers the whole exchange, this only the work around it.
POST_MARGIN = 5.0
#: Backoff between tries: 5 s, doubling, at most an hour; given up after this many (about 2 days).
FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS, MAX_ATTEMPTS = 5.0, 3600.0, 60
#: Seconds between two looks at the outbox when it had nothing due.
IDLE_WAIT = 1.0


def outbox_backlog(cur) -> dict:
    """Events neither delivered nor given up, and the age in seconds of the oldest (0: none)."""
    cur.execute("SELECT count(*) AS pending, COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) AS oldest"
                "  FROM publish_event_outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL")
    row = cur.fetchone()
    return {"pending": int(row["pending"]), "oldest_seconds": float(row["oldest"])}


class WebhookDelivery:
    def __init__(self, database_url: str, ops_settings, redact, stop: threading.Event):
        self.settings, self.redact, self.stop = ops_settings, redact, stop
        # Its own connection: a round waiting on a receiver never takes one the claims need.
        self.db = Database(database_url, "media-publisher-webhooks", maxconn=1)
        self.client = WebhookClient(ops_settings.webhook_url, ops_settings.webhook_secret, ops_settings.webhook_timeout)
        self.thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def start(self) -> WebhookDelivery:
        self.thread.start()
        # scheme://host[:port] only: the rest of a webhook URL may be its credential.
        logger.info("webhook: delivering completion events to %s", url_origin(self.settings.webhook_url))
        return self

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                sent = self.deliver_due()
            except Exception as e:  # the database is away, say: the next round tries again
                logger.warning("webhook: delivery round failed: %s", short_error(e, self.redact))
                sent = 0
            if not sent:
                self.stop.wait(IDLE_WAIT)

    def deliver_due(self) -> int:
        longest_post = self.settings.webhook_timeout + POST_MARGIN
        lease = longest_post * BATCH
        taken = time.monotonic()  # before the lease starts: its end is judged early, never late
        with self.db.transaction() as cur:
            cur.execute("SELECT id, event_id, payload, attempts FROM publisher_webhook_take(%s, %s)",
                        (BATCH, timedelta(seconds=lease)))
            due = cur.fetchall()
        for sent, event in enumerate(due):
            if time.monotonic() - taken + longest_post > lease:
                # A slow database, say: the rest would be sent past their lease, maybe
                # while another listener sends them too. They are taken again once it ends.
                return sent
            error = self.client.post(event["payload"])
            attempts = event["attempts"] + 1
            retry_in = None if error is None or attempts >= MAX_ATTEMPTS else timedelta(
                seconds=min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** (attempts - 1)))
            if error is not None:
                error = bounded(error, self.redact)
                logger.warning("webhook: event %s (job %s) not delivered, try %s: %s%s", event["event_id"],
                               event["payload"].get("job_id"), attempts, error,
                               "" if retry_in else "; giving up")
            with self.db.transaction() as cur:
                cur.execute("SELECT publisher_webhook_record(%s, %s, %s, %s)",
                            (event["id"], error is None, error, retry_in))
        return len(due)

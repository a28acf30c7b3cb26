"""The webhook outbox (sql/010_publish_events.sql): events that ended jobs wrote,
taken for delivery under a lease and recorded as delivered, retried or given up."""

from __future__ import annotations

from datetime import timedelta

from .cursor import Cursor, one_row
from .rows import OutboxEvent

TAKE = "SELECT id, event_id, payload, attempts FROM publisher_webhook_take(%s, %s)"
RECORD = "SELECT publisher_webhook_record(%s, %s, %s, %s)"
BACKLOG = """
    SELECT count(*) AS pending, COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) AS oldest
      FROM publish_event_outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL
"""


def take(cur: Cursor, batch: int, lease: timedelta) -> list[OutboxEvent]:
    cur.execute(TAKE, (batch, lease))
    return [OutboxEvent.from_row(r) for r in cur.fetchall()]


def record(cur: Cursor, event_id: int, delivered: bool, error: str | None, retry_in: timedelta | None) -> None:
    """Delivered; or not, with the error, tried again in retry_in (None: given up)."""
    cur.execute(RECORD, (event_id, delivered, error, retry_in))


def backlog(cur: Cursor) -> dict[str, float]:
    """Events neither delivered nor given up, and the age in seconds of the oldest (0: none)."""
    cur.execute(BACKLOG)
    row = one_row(cur)
    return {"pending": int(row["pending"]), "oldest_seconds": float(row["oldest"])}

"""The broker messages (dramatiq-pg's dramatiq.queue) worth announcing again: the
one query about them that needs the job tables (which hosts are alive). The rest
of the broker's SQL touches only dramatiq.queue and pg_locks and stays with the
broker (publisher/jobs/pgbroker.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from .cursor import Cursor, Row

# Messages waiting ('queued') for a while, or taken ('consumed') by a consumer
# whose session may no longer hold the message's advisory lock; not those in the
# queue of a worker host that is not alive (no one would take them, and the jobs
# they belong to were handed out again).
ORPHAN_CANDIDATES = """
    SELECT message_id::text, queue_name, state::text
      FROM dramatiq.queue q
     WHERE state IN ('queued', 'consumed') AND mtime < now() - %(min_age)s
       AND (q.queue_name NOT LIKE %(host_queues)s OR EXISTS (
            SELECT 1 FROM publisher_workers w
             WHERE w.seen_at > now() - %(alive)s
               AND q.queue_name IN (w.queue, w.queue || '.DQ')))
     ORDER BY mtime LIMIT %(batch)s
"""


def orphan_candidates(cur: Cursor, *, min_age: timedelta, alive: timedelta, host_queue_prefix: str,
                      batch: int) -> Sequence[Row]:
    cur.execute(ORPHAN_CANDIDATES, {"min_age": min_age, "alive": alive, "batch": batch,
                                    "host_queues": host_queue_prefix.replace("%", r"\%") + "%"})
    return cur.fetchall()

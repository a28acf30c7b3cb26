"""Backfill: a job for every live file that was never published, or whose last
job failed (sql/006_operations.sql, publisher_backfill).

It walks the files in id order, a page at a time, at most `rate` jobs a second.
Stopping is safe at any point and a new run resumes: the files done so far have
a job and are no longer candidates. A file that gained a job meanwhile (the
listener, the application, a second backfill) is skipped, not duplicated."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg2.extras

from publisher.jobs.store import actions


@dataclass
class BackfillResult:
    queued: list[int] = field(default_factory=list)
    skipped: int = 0  # files that had gained an active job meanwhile


def backfill(conn, *, rate: float, limit: int | None = None,
             on_page: Callable[[int], object] = lambda n: None) -> BackfillResult:
    """Queues the jobs, committing each page, so that what is done stays done."""
    result = BackfillResult()
    page = max(1, min(100, int(rate)))
    after = None
    started = time.monotonic()
    while limit is None or len(result.queued) < limit:
        size = page if limit is None else min(page, limit - len(result.queued))
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            rows = actions.backfill_page(cur, after, size)
        if not rows:
            break
        after = rows[-1]["file_id"]
        queued = [r["job_id"] for r in rows if r["job_id"] is not None]
        result.queued += queued
        result.skipped += len(rows) - len(queued)
        on_page(len(rows))
        # The rate holds over the whole run: a slow page is not made up for by a burst.
        ahead = len(result.queued) / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    return result

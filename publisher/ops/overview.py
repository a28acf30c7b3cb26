"""The operations page's overview, read in one transaction: jobs per status, the
last hour minute by minute, the oldest pending job, failures grouped by their
typed reason, the worker hosts from their heartbeats, and the latest publishes
(each with its smallest published variant). Read-only (it runs under
publisher_readonly); /api/summary serves it as JSON. The statements are
publisher/jobs/store/overview.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from publisher.jobs.store import overview as reads
from publisher.jobs.store.states import Status

_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def overview(cur, *, publishes: int = 12) -> dict:
    counted = reads.job_counts(cur)
    jobs = {s.value: counted.get(s.value, 0) for s in Status}
    oldest = reads.oldest_pending(cur)
    minutes = reads.last_hour_per_minute(cur)
    failures = reads.failures_by_reason(cur)
    hosts = reads.hosts(cur)
    latest = [_safe_publish(r) for r in reads.latest_publishes(cur, publishes)]
    return {
        "read_at": datetime.now(UTC),
        "jobs": jobs,
        "last_hour": {
            "completed": sum(m["completed"] for m in minutes),
            "failed": sum(m["failed"] for m in minutes),
            "per_minute": minutes,
        },
        "oldest_pending": oldest,
        "failures": failures,
        "hosts": hosts,
        "latest_publishes": latest,
    }


def _safe_publish(row: dict) -> dict:
    """Only a colour that is one goes into a style attribute; only a data: WebP, or
    nothing, is drawn as the placeholder."""
    colour = row["dominant_color"]
    placeholder = row["placeholder"]
    return {
        **row,
        "dominant_color": colour if colour and _COLOUR.fullmatch(colour) else None,
        "placeholder": placeholder if placeholder and placeholder.startswith("data:image/webp;base64,") else None,
    }

"""The operations page's overview, read in one transaction: jobs per status, the
last hour minute by minute, the oldest pending fresh lot, failures grouped by their
typed reason, the worker hosts from their heartbeats (and which drain), and the
latest publishes (each with its smallest published variant). Read-only (it runs under
publisher_readonly); /api/summary serves it as JSON. The statements are
publisher/jobs/store/overview.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from publisher.jobs.host_identity import HOST_ID
from publisher.jobs.store import overview as reads
from publisher.jobs.store.states import Lane, Status

#: The drain rate of the lanes' estimate: jobs completed over this window.
RATE_WINDOW = timedelta(minutes=15)
#: The statuses the overview counts in full.
CURRENT_STATUSES = tuple(s for s in Status if s is not Status.COMPLETED)

_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def overview(cur, *, publishes: int = 12) -> dict:
    # Counting every completed job of the history would read an index entry per job kept (millions):
    # the overview counts those of the last day, the other statuses in full.
    counted = reads.job_counts(cur, CURRENT_STATUSES)
    jobs = {s.value: counted.get(s.value, 0) for s in CURRENT_STATUSES}
    oldest = reads.oldest_pending(cur)
    minutes = reads.last_hour_per_minute(cur)
    failures = reads.failures_by_reason(cur)
    hosts = [_host(r) for r in reads.hosts(cur)]
    latest = [_safe_publish(r) for r in reads.latest_publishes(cur, publishes)]
    rate = reads.completed_since(cur, RATE_WINDOW) / RATE_WINDOW.total_seconds()
    return {
        "lanes": lanes(list(reads.pending_by_lane(cur)), rate, reads.paused_lanes(cur)),
        "read_at": datetime.now(UTC),
        "jobs": jobs,
        "completed_last_day": reads.completed_since(cur, timedelta(days=1)),
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


def charts(minutes: list[dict]) -> dict:
    """The last day's minutes, with the tops the charts are scaled to."""
    published = [m["completed"] for m in minutes]
    failed = [m["failed"] for m in minutes]
    p95 = [m["p95_seconds"] for m in minutes if m["p95_seconds"] is not None]
    return {"minutes": minutes, "published": sum(published), "failed": sum(failed),
            "count_top": max([1, *published, *failed]), "seconds_top": max([1.0, *p95])}


def lanes(pending: list[dict], per_second: float, paused: frozenset[int] | set[int] = frozenset()) -> list[dict]:
    """Each lane: its pending jobs, the oldest one's age, whether an operator paused it, and when it is
    drained at the rate of the last RATE_WINDOW (None: nothing completed in it, or it is paused); a lane
    drains after every lane before it that is not paused."""
    by_lane = {row["lane"]: row for row in pending}
    ahead, out = 0, []
    for lane in Lane:
        row = by_lane.get(lane.value, {"pending": 0, "oldest_seconds": None})
        if lane.value not in paused:
            ahead += row["pending"]
        drained = (None if lane.value in paused and row["pending"] else
                   ahead / per_second if per_second else (0.0 if not ahead else None))
        out.append({"lane": lane.name.lower(), "pending": row["pending"], "oldest_seconds": row["oldest_seconds"],
                    "paused": lane.value in paused, "drained_in_seconds": drained})
    return out


def _host(row: dict) -> dict:
    """A worker host, and whether its id is one an operator's action may name: the workers write
    their own rows, so an id that is no host id (a path, markup) gets no button."""
    return {**row, "actionable": HOST_ID.fullmatch(row["host_id"]) is not None}


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

"""What every operator tool writes: JSON with timestamps in ISO 8601 and intervals in
seconds, and ages as people read them."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta


def json_value(value):
    """json.dumps' `default`: what JSON has no type for."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def to_json(data, indent: int | None = None) -> str:
    return json.dumps(data, default=json_value, indent=indent)


def print_json(data) -> None:
    """What a tool prints for --json."""
    print(to_json(data, indent=2))


def age(seconds: float, spaced: bool = False) -> str:
    """Whole seconds below two minutes, minutes below two hours, then hours and minutes:
    terse for a terminal ("90s", "66m", "2h05m"), spaced for the page ("90 s", "66 min", "2 h 05 min")."""
    s, m, h, gap = (" s", " min", " h", " ") if spaced else ("s", "m", "h", "")
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}{s}"
    if seconds < 7200:
        return f"{seconds // 60}{m}"
    return f"{seconds // 3600}{h}{gap}{seconds % 3600 // 60:02d}{m}"

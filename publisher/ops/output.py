"""JSON as every operator tool writes it: timestamps in ISO 8601, intervals in seconds."""

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

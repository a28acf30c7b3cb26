"""The argument types of publisher-admin: each refuses what is not one, with the reason."""

from __future__ import annotations

import argparse
import re
import uuid
from datetime import UTC, datetime, timedelta

from publisher.jobs.host_identity import HOST_ID, MAX_HOST_ID

AGE = re.compile(r"(\d+)\s*([smhd])")


def count(value: str) -> int:
    if not re.fullmatch(r"\d+", value.strip()):
        raise argparse.ArgumentTypeError(f"not a count (0 or more): {value!r}")
    return int(value)


def job_id(value: str) -> int:
    if not re.fullmatch(r"\d{1,18}", value.strip()) or int(value) == 0:
        raise argparse.ArgumentTypeError(f"not a job id: {value!r}")
    return int(value)


def rate(value: str) -> float:
    try:
        per_second = float(value)
    except ValueError:
        per_second = -1.0
    if not 0 < per_second < float("inf"):
        raise argparse.ArgumentTypeError(f"not a rate (jobs per second, above 0): {value!r}")
    return per_second


def since(value: str) -> datetime:
    age = AGE.fullmatch(value.strip())
    if age:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[age[2]]
        return datetime.now(UTC) - timedelta(**{unit: int(age[1])})
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time (ISO 8601, or an age such as 2h): {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def file_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a file id (uuid): {value!r}") from None


def host_id(value: str) -> str:
    if not HOST_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(f"not a host id (1 to {MAX_HOST_ID} letters, digits, dots, dashes or "
                                         f"underscores, as `status` lists them): {value[:60]!r}")
    return value

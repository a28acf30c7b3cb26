"""Typed rows the store returns. Every value comes from the database, so each
is built field by field from the row (from_row), never taken as the row itself."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from publisher.stages import Stage


@dataclasses.dataclass(frozen=True)
class ClaimedJob:
    """A job the listener claimed or rescued: its new attempt, from this stage."""
    job_id: int
    token: str
    stage: Stage
    file_id: str
    #: publish_jobs.lane: its first step is sent in it.
    lane: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ClaimedJob:
        return cls(int(row["job_id"]), str(row["token"]), Stage(row["stage"]), str(row["file_id"]), int(row["lane"]))


@dataclasses.dataclass(frozen=True)
class StepJob:
    """What a step reads of its job's current attempt."""
    id: int
    file_id: str
    raid_key: str
    stage: Stage
    artifacts: Mapping[str, Any]
    retry_count: int
    max_retries: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StepJob:
        return cls(int(row["id"]), str(row["file_id"]), str(row["raid_key"]), Stage(row["stage"]),
                   row["artifacts"] or {}, int(row["retry_count"]), int(row["max_retries"]))


@dataclasses.dataclass(frozen=True)
class JobContext:
    """What a step's log lines and the queue-lag metric need when it starts."""
    file_id: str
    retry_count: int
    since_insert: float

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobContext:
        return cls(str(row["file_id"]), int(row["retry_count"]), float(row["since_insert"]))


@dataclasses.dataclass(frozen=True)
class OutboxEvent:
    """A webhook event taken for delivery."""
    id: int
    event_id: str
    payload: Mapping[str, Any]
    attempts: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OutboxEvent:
        return cls(int(row["id"]), str(row["event_id"]), row["payload"], int(row["attempts"]))


@dataclasses.dataclass(frozen=True)
class FileToPurge:
    """A soft-deleted file locked for its purge: the keys its variants name or that were
    tracked for it (untrusted: checked against the file's folder before removal), and its jobs."""
    file_id: str
    keys: tuple[str, ...]
    job_ids: tuple[int, ...]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> FileToPurge:
        return cls(str(row["file_id"]), tuple(row["keys"] or ()), tuple(row["job_ids"] or ()))

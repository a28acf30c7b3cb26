"""The filter of jobs the console's list and `publisher-admin list` show, and the bulk actions
on what it matches (publisher_job_matches, sql/002_job_states.sql): one rule for all of them."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any


@dataclasses.dataclass(frozen=True)
class JobFilter:
    """None filters nothing. `reason` is a typed failure reason (origin_404, ...) or a literal,
    case-insensitive part of last_error; `key_prefix` the literal start of the file's RAID key."""
    status: str | None = None
    reason: str | None = None
    file_id: str | None = None
    key_prefix: str | None = None
    since: datetime | None = None

    def params(self) -> dict[str, Any]:
        """The statement parameters of publisher_job_matches' arguments."""
        key_like = None if self.key_prefix is None else _literal_like(self.key_prefix) + "%"
        return {"status": self.status, "reason": self.reason, "file_id": self.file_id, "key_like": key_like,
                "since": self.since}


#: publisher_job_matches over the job `j` and its file `f`, with JobFilter.params().
MATCHES = ("publisher_job_matches(j, f, %(status)s, %(reason)s, %(file_id)s::uuid, %(key_like)s, "
           "%(since)s::timestamptz)")


def _literal_like(text: str) -> str:
    """text as a LIKE pattern that matches only itself (LIKE's escape is the backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

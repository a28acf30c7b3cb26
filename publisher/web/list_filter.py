"""The job list's filter as the page takes it, in a query string or a bulk action's form."""

from __future__ import annotations

import dataclasses
import uuid
from urllib.parse import urlencode

from starlette.exceptions import HTTPException

from publisher.jobs.store.filters import JobFilter
from publisher.jobs.store.states import Status


@dataclasses.dataclass(frozen=True)
class ListFilter:
    """The job list's filter as the page takes it: a status, a reason, and a search of a file id or
    the start of a RAID key; the same in a query string and in a bulk action's form."""
    status: str | None = None
    reason: str | None = None
    q: str | None = None

    @classmethod
    def of(cls, params) -> ListFilter:
        status = params.get("status") or None
        if status is not None and status not in [s.value for s in Status]:
            raise HTTPException(400, f"unknown status {status[:40]!r}; one of {', '.join(s.value for s in Status)}")
        return cls(status, params.get("reason") or None, (params.get("q") or "").strip() or None)

    def jobs(self) -> JobFilter:
        return JobFilter(status=self.status, reason=self.reason, **_file_search(self.q))

    def query(self) -> str:
        return urlencode({"status": self.status or "", "reason": self.reason or "", "q": self.q or ""})


def _file_search(text: str | None) -> dict:
    """The job list's search: a file id, or else the start of a RAID key."""
    if text is None:
        return {}
    try:
        return {"file_id": str(uuid.UUID(text))}
    except ValueError:
        return {"key_prefix": text}

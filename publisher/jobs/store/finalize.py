"""The last step's result, recorded in one transaction (sql/002_job_states.sql,
sql/004_imaging.sql): the job completed, the file published with its variants,
and the imaging facts (recipe, placeholder, colour)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .cursor import Cursor, one_row
from .states import Finalized

FINALIZE = "SELECT publisher_finalize(%s, %s, %s, %s, %s, %s, %s, %s) AS outcome"


def finalize(cur: Cursor, job_id: int, token: str, variants: Mapping[str, Any], width: int, height: int, *,
             recipe: str | None = None, placeholder: str | None = None,
             dominant_color: str | None = None) -> Finalized:
    """COMPLETED, STALE (another attempt owns the job) or DELETED (the file was deleted: job failed).
    The imaging facts are recorded with the completion (none given: the file keeps its own)."""
    cur.execute(FINALIZE, (job_id, token, json.dumps(variants), width, height, recipe, placeholder, dominant_color))
    return Finalized(one_row(cur)["outcome"])

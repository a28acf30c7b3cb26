"""The cursor the store's functions take, typed by what they call of it: psycopg2's
RealDictCursor, which the service's transactions (publisher/clients/db.py) and the
operator's tools open, so a row is a dict by column name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

#: One row, its values by column name.
Row = dict[str, Any]


class Cursor(Protocol):
    def execute(self, query: str, vars: Sequence[Any] | Mapping[str, Any] | None = None, /) -> None: ...

    def fetchone(self) -> Row | None: ...

    def fetchall(self) -> Sequence[Row]: ...


def one_row(cur: Cursor) -> Row:
    """The row of a statement that returns exactly one (a function's result, an aggregate,
    a job the caller's transaction holds)."""
    row = cur.fetchone()
    if row is None:
        raise LookupError("the statement returned no row")
    return row

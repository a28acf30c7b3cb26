import pytest

from tests.support.job_sql import cursor


@pytest.fixture
def cur(schema_db):
    """A dict cursor on a fresh database with sql/ applied (autocommit)."""
    conn, _ = schema_db
    return cursor(conn)

"""The database schema: the numbered files of sql/, and which of them a
database has.

Each file is re-runnable (creates what is missing, CREATE OR REPLACE), so every
deploy applies all of them in number order; after each file the table
publisher_schema_versions (000_schema_versions.sql) records its number, name
and checksum. A file is pending when it was never applied, or was edited since
(another checksum). The files use psql meta-commands (\\gset), so psql applies
them, as the README always told operators to.

The files ship inside the wheel as publisher/sql/ (setup.py copies them there),
so an installed service can migrate without the source tree: `publisher-admin
migrate`, `publisher-admin schema`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from psycopg2.extensions import make_dsn, parse_dsn


def _sql_dir() -> Path:
    """The installed copy (publisher/sql/ in the wheel), else the source tree's sql/."""
    package = Path(__file__).resolve().parent.parent  # publisher/, where the wheel puts sql/
    shipped = package / "sql"
    return shipped if shipped.is_dir() else package.parent / "sql"


SQL_DIR = _sql_dir()

#: NNN_words.sql: the number orders the files and must be unique.
FILE_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

TABLE = "publisher_schema_versions"


class SchemaError(Exception):
    """The schema files are malformed, or psql is missing or failed."""


@dataclasses.dataclass(frozen=True)
class SchemaFile:
    version: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def schema_files(directory: Path = SQL_DIR) -> list[SchemaFile]:
    """The files in apply order; refuses a misnamed file or a number used twice."""
    files: list[SchemaFile] = []
    seen: dict[int, str] = {}
    for path in sorted(directory.glob("*.sql")):
        match = FILE_NAME.match(path.name)
        if not match:
            raise SchemaError(f"{path.name}: schema files are named NNN_words.sql")
        version = int(match.group(1))
        if version in seen:
            raise SchemaError(f"{seen[version]} and {path.name} share the number {version:03d}")
        seen[version] = path.name
        files.append(SchemaFile(version, path))
    if not files:
        raise SchemaError(f"no schema files in {directory}")
    return files


def find_psql() -> str:
    psql = shutil.which("psql")
    if not psql:
        raise SchemaError("psql not found on PATH (Debian: apt-get install postgresql-client)")
    return psql


def psql_connection(url: str) -> tuple[str, dict[str, str]]:
    """The DSN psql is given, without the password, and the environment that
    carries the password: a process's arguments are visible to every local user
    (ps, /proc), its environment only to its own user."""
    try:
        params = parse_dsn(url)
    except Exception as e:  # psycopg2's ProgrammingError names the malformed part, not the password
        raise SchemaError(f"DATABASE_URL is not a valid connection string: {type(e).__name__}") from None
    password = params.pop("password", None)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    return make_dsn(**params), env


def apply(url: str, psql: str | None = None, files: list[SchemaFile] | None = None, echo=None) -> None:
    """Applies every file in order, each followed by its record. A file that fails
    stops the run (ON_ERROR_STOP) before it is recorded. The record is its own
    statement after the file's COMMIT: should it fail, the file stays pending
    and is applied again next time, which a re-runnable file allows."""
    psql = psql or find_psql()
    dsn, env = psql_connection(url)
    for f in files if files is not None else schema_files():
        if echo:
            echo(f"applying {f.name}")
        # name and checksum are [a-z0-9_.] (FILE_NAME, hex): safe to inline.
        record = (f"INSERT INTO {TABLE} (version, name, checksum) VALUES ({f.version}, '{f.name}', '{f.checksum}') "
                  f"ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum, "
                  f"applied_at = now()")
        done = subprocess.run([psql, dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(f.path), "-c", record],
                              capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise SchemaError(f"{f.name} failed: {done.stderr.strip()}")


def applied(cur) -> dict[int, dict]:
    """What the database records, by version (empty before the first migrate)."""
    cur.execute("SELECT to_regclass(%s) IS NOT NULL AS present", (TABLE,))
    if not cur.fetchone()["present"]:
        return {}
    cur.execute(f"SELECT version, name, checksum, applied_at FROM {TABLE} ORDER BY version")
    return {row["version"]: dict(row) for row in cur.fetchall()}


def pending(files: list[SchemaFile], recorded: dict[int, dict]) -> list[tuple[SchemaFile, str]]:
    """The files a migrate would change the database with, each with why."""
    out = []
    for f in files:
        row = recorded.get(f.version)
        if row is None:
            out.append((f, "never applied"))
        elif row["checksum"] != f.checksum or row["name"] != f.name:
            out.append((f, f"changed since applied as {row['name']} at {row['applied_at']:%Y-%m-%d %H:%M:%S%z}"))
    return out

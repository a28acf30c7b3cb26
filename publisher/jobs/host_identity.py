"""Which worker host this is: the id its queue and its jobs' host_id carry.

A job's later steps run where its files are, so a host id must name a scratch
directory, not a machine: two worker groups on one machine (or in network
namespaces that share a hostname) with their own SCRATCH_DIR, or a container
that comes back under its hostname with an empty scratch volume, are other hosts.
Unless WORKER_HOST_ID is set, the id is the hostname and an id kept in a file
inside the scratch directory, made on first start: it lives and dies with the
files it vouches for.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import socket

#: The file in SCRATCH_DIR that names it (the sweep leaves it alone: it is no attempt's folder).
IDENTITY_FILE = ".host-id"
#: Hex characters of the scratch directory's id.
IDENTITY_CHARS = 8
#: A host id holds at most this many characters (publisher/settings/job.py: HOST_ID).
MAX_HOST_ID = 200
_IDENTITY = re.compile(rf"[0-9a-f]{{{IDENTITY_CHARS}}}")


def host_id(settings) -> str:
    """WORKER_HOST_ID as configured, else the hostname and the scratch directory's id
    (read once per process: a process keeps the id it started with)."""
    return settings.worker_host_id or _kept_default(settings.scratch_dir)


@functools.lru_cache(maxsize=None)
def _kept_default(scratch_dir: str) -> str:
    return default_host_id(scratch_dir)


def default_host_id(scratch_dir: str, hostname: str | None = None) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", hostname or socket.gethostname()) or "localhost"
    return f"{name[:MAX_HOST_ID - IDENTITY_CHARS - 1]}-{scratch_identity(scratch_dir)}"


def scratch_identity(scratch_dir: str) -> str:
    """The id kept in the scratch directory; made by the first process to ask. The worker
    processes of a host start together: the file is written aside and linked into place,
    so they all read the one that won."""
    path = os.path.join(scratch_dir, IDENTITY_FILE)
    kept = _read(path)
    if kept:
        return kept
    os.makedirs(scratch_dir, exist_ok=True)
    aside = f"{path}.{os.getpid()}.new"
    with open(aside, "w") as f:
        f.write(secrets.token_hex(IDENTITY_CHARS // 2) + "\n")
    try:
        os.link(aside, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(aside)
    kept = _read(path)
    if not kept:
        raise RuntimeError(f"{path} does not hold a scratch directory id; remove it to make a new one")
    return kept


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            value = f.read(64).strip()
    except FileNotFoundError:
        return None
    return value if _IDENTITY.fullmatch(value) else None

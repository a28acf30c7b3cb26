"""Which worker host this is: the id its queue and its jobs' host_id carry.

A job's later steps run where its files are, so a host id must name a scratch
directory, not a machine: two worker groups on one machine (or in network
namespaces that share a hostname) with their own SCRATCH_DIR, or a container
that comes back under its hostname with an empty scratch volume, are other hosts.
So the id is the hostname and an id kept in a file inside the scratch directory,
made on first start: it lives and dies with the files it vouches for. A damaged
id file is replaced by a new id, never a reason not to start.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import re
import secrets
import shutil
import socket

from publisher.jobs.scratch import make_private_dir

logger = logging.getLogger("publisher.jobs")

#: The file in SCRATCH_DIR that names it (the sweep leaves it alone: it is no attempt's folder).
IDENTITY_FILE = ".host-id"
#: Hex characters of the scratch directory's id.
IDENTITY_CHARS = 8
#: A host id holds at most this many characters, of HOST_ID's (it names the host's queue).
MAX_HOST_ID = 200
HOST_ID = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_HOST_ID}}}")
_IDENTITY = re.compile(rf"[0-9a-f]{{{IDENTITY_CHARS}}}")
#: What _read returns for a file that holds no id.
DAMAGED = object()


def host_id(settings) -> str:
    """The hostname and the scratch directory's id (read once per process: a process keeps
    the id it started with)."""
    return _kept_default(settings.scratch_dir)


@functools.cache
def _kept_default(scratch_dir: str) -> str:
    return default_host_id(scratch_dir)


def default_host_id(scratch_dir: str, hostname: str | None = None) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", hostname or socket.gethostname()) or "localhost"
    return f"{name[:MAX_HOST_ID - IDENTITY_CHARS - 1]}-{scratch_identity(scratch_dir)}"


def scratch_identity(scratch_dir: str) -> str:
    """The id kept in the scratch directory; made by the first process to ask. The worker
    processes of a host start together: they take turns under a lock on the directory,
    so they all read the one id the first wrote. An id file that cannot be read or holds
    no id (cut short by a power loss, damaged) is replaced by a new id: the files it
    vouched for are unknown anyway, and the host must not stay down for it."""
    path = os.path.join(scratch_dir, IDENTITY_FILE)
    kept = _read(path)
    if isinstance(kept, str):
        return kept
    make_private_dir(scratch_dir)
    with _locked(scratch_dir):
        kept = _read(path)
        if isinstance(kept, str):
            return kept
        if kept is DAMAGED:
            logger.warning("%s holds no scratch directory id (damaged or unreadable); this host takes a new "
                           "host id, and the files of the old one are swept", path)
        return _write_new(scratch_dir, path)


def _write_new(scratch_dir: str, path: str) -> str:
    """A new id, on disk before it is in place: written aside, flushed, then renamed over."""
    new = secrets.token_hex(IDENTITY_CHARS // 2)
    aside = f"{path}.{os.getpid()}.new"
    try:
        with open(aside, "w") as f:
            f.write(new + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.replace(aside, path)
        except IsADirectoryError:
            shutil.rmtree(path)
            os.replace(aside, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(aside)
    directory = os.open(scratch_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)  # the rename itself survives a power loss
    finally:
        os.close(directory)
    return new


@contextlib.contextmanager
def _locked(scratch_dir: str):
    fd = os.open(scratch_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read(path: str) -> str | object | None:
    """The id in the file; None if there is no file; DAMAGED if it holds no id."""
    try:
        with open(path, "rb") as f:
            value = f.read(64).decode("ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return DAMAGED
    return value if _IDENTITY.fullmatch(value) else DAMAGED

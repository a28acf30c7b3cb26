"""A worker host's scratch directory (SCRATCH_DIR): one folder per job attempt,
`<job id>-<attempt token>`, where the steps of the attempt pass the original and
the variants to each other.

The names of the files a step hands over travel through the job's artifacts in
the database, and come back from there untrusted: a step opens only a plain
file name, as a regular file inside its attempt's folder, never through a
symlink (staged, open_staged). Files that are gone (the scratch volume was
emptied, another group of workers shares this host's queue) are told apart
from bad names: the job then starts again from its fetch (lifecycle).

An attempt's folder is removed when its job is finalized or fails for good. A
folder whose attempt is no longer the job's current one on this host (the job
was rescued, re-run or taken over, or the process that held it died) is removed
by the sweep each worker process runs at start and then periodically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import os
import re
import shutil
import stat
from typing import BinaryIO, Iterator

from publisher.errors import PermanentError, TransientError

#: An attempt's folder: job id and attempt token.
ATTEMPT = re.compile(r"(\d+)-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
#: Folders of the release that kept files by job id only.
LEGACY = re.compile(r"\d+")
#: A file of an attempt: a plain name, no separator, not hidden, not "." or "..".
FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
#: Errors that say the scratch disk is full (or the user's quota is used up).
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
HASH_CHUNK = 1024 * 1024


class ScratchFilesMissing(TransientError):
    """A file the previous step of the attempt wrote is not in this host's scratch."""

    reason = "scratch_missing"


class ScratchFilesChanged(ScratchFilesMissing):
    """A staged file holds other bytes than the step that wrote it handed over."""

    reason = "scratch_changed"


class NoSpace(TransientError):
    """The scratch disk is full."""

    reason = "no_space"


@dataclasses.dataclass
class StagedBytes:
    """A staged file, open, with the hash and size of what it holds."""

    file: BinaryIO
    sha256: str
    size: int

    def __enter__(self) -> StagedBytes:
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()


class Scratch:
    def __init__(self, root: str):
        self.root = root
        os.makedirs(root, exist_ok=True)

    def path(self, job_id: int, token: str, name: str) -> str:
        """A file the attempt writes (its folder is made on first use)."""
        folder = self._folder(job_id, token)
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, _plain(name))

    def staged(self, job_id: int, token: str, name) -> str:
        """The path of a file an earlier step of the attempt wrote, named by the job's
        artifacts: a regular file inside the attempt's folder, or PermanentError
        (bad_artifacts); ScratchFilesMissing when it is not there."""
        path = os.path.join(self._folder(job_id, token), _plain(name))
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            raise ScratchFilesMissing(f"{name!r} of this attempt is not in this host's scratch directory "
                                      f"({self.root})") from None
        if not stat.S_ISREG(mode):
            raise PermanentError(f"the staged file {name!r} is not a regular file", "bad_artifacts")
        inside = os.path.join(os.path.realpath(self.root), os.path.basename(self._folder(job_id, token)), name)
        if os.path.realpath(path) != inside:
            raise PermanentError(f"the staged file {name!r} resolves outside its attempt's folder", "bad_artifacts")
        return path

    def open_staged(self, job_id: int, token: str, name) -> StagedBytes:
        """A staged file opened without following a symlink, hashed from the open file:
        what is hashed is what is read after (rewound) and sent."""
        path = self.staged(job_id, token, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise ScratchFilesMissing(f"{name!r} of this attempt is gone from this host's scratch") from None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise PermanentError(f"the staged file {name!r} is a symlink", "bad_artifacts") from None
            raise
        f = os.fdopen(fd, "rb")
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PermanentError(f"the staged file {name!r} is not a regular file", "bad_artifacts")
            digest, size = hashlib.sha256(), 0
            while chunk := f.read(HASH_CHUNK):
                digest.update(chunk)
                size += len(chunk)
            f.seek(0)
        except BaseException:
            f.close()
            raise
        return StagedBytes(f, digest.hexdigest(), size)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around a step's writes into scratch: a full disk is NoSpace, not a bare OSError."""
        try:
            yield
        except OSError as e:
            if e.errno in NO_SPACE:
                raise NoSpace(f"the scratch directory {self.root} is full: {e.strerror}") from e
            raise

    def free_bytes(self) -> int:
        """Bytes this process may still write into the scratch directory's file system
        (made again if it was removed: the attempts' folders go under it)."""
        os.makedirs(self.root, exist_ok=True)
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def remove(self, job_id: int, token: str) -> None:
        shutil.rmtree(self._folder(job_id, token), ignore_errors=True)

    def attempts(self) -> list[tuple[int, str]]:
        """The attempts that have a folder here."""
        return [(int(m.group(1)), m.group(2)) for m in map(ATTEMPT.fullmatch, os.listdir(self.root)) if m]

    def sweep(self, listed: list[tuple[int, str]], current: set[tuple[int, str]]) -> int:
        """Removes the folders of the attempts `listed` (by attempts(), before `current` was
        read) that are not `current`, and the legacy folders; returns how many. A folder made
        after the listing is left alone: its attempt may have begun since."""
        gone = [f"{job}-{token}" for job, token in listed if (job, token) not in current]
        gone += [name for name in os.listdir(self.root) if LEGACY.fullmatch(name)]
        for name in gone:
            shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
        return len(gone)

    def _folder(self, job_id: int, token: str) -> str:
        folder = f"{job_id}-{token}"
        if not ATTEMPT.fullmatch(folder):
            raise PermanentError(f"not an attempt: job {job_id!r}, token {token!r}", "bad_artifacts")
        return os.path.join(self.root, folder)


def _plain(name) -> str:
    if not isinstance(name, str) or not FILE_NAME.fullmatch(name):
        raise PermanentError(f"the job's artifacts name {str(name)[:100]!r}, not a plain file name of its "
                             "attempt's folder", "bad_artifacts")
    return name

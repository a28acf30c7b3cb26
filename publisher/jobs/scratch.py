"""A worker host's scratch directory (SCRATCH_DIR): one folder per job attempt,
`<job id>-<attempt token>`, where the steps of the attempt pass the original and
the variants to each other.

The directory is the worker's alone: made 0700, and refused at start if it is a
symlink, owned by another user, or writable by group or others (ScratchDirUnsafe).
Inside it nothing is reached by a path that is walked again: an attempt's folder
is opened without following a symlink (O_DIRECTORY | O_NOFOLLOW) and its files
are made, opened and removed relative to that open folder (dir_fd), so a folder
swapped for a symlink after it was checked leads nowhere. A library that takes
a path (the download, the decoders) gets one through the open folder or file
(/proc/self/fd/N: Linux).

The names of the files a step hands over travel through the job's artifacts in
the database, and come back from there untrusted: a step opens only a plain
file name, as a regular file with one link (never a symlink, never a hard link
to another file) inside its attempt's folder (open_staged). The original is
decoded only if it holds the bytes the fetch hashed (open_source). Files that
are gone or changed (the scratch volume was emptied, another group of workers
shares this host's queue) are told apart from bad names: the job then starts
again from its fetch (host_faults).

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
from collections.abc import Iterator
from typing import BinaryIO

from publisher.errors import PermanentError, TransientError

#: An attempt's folder: job id and attempt token.
ATTEMPT = re.compile(r"(\d+)-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
#: A file of an attempt: a plain name, no separator, not hidden, not "." or "..".
FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
#: Errors that say the scratch disk is full: no blocks, no inodes, or the user's quota used up.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
HASH_CHUNK = 1024 * 1024
#: Opening a directory that must not be a symlink (the last component; the ones before are opened fds).
DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: Errors of opening a directory with DIRECTORY that say it is a symlink or not a directory.
NOT_A_FOLDER = (errno.ELOOP, errno.ENOTDIR)


class ScratchDirUnsafe(RuntimeError):
    """SCRATCH_DIR is not the worker's alone: it does not start."""


class ScratchFilesMissing(TransientError):
    """A file the previous step of the attempt wrote is not in this host's scratch."""

    reason = "scratch_missing"


class ScratchFilesChanged(ScratchFilesMissing):
    """A staged file holds other bytes than the step that wrote it handed over."""

    reason = "scratch_changed"


class NoSpace(TransientError):
    """The scratch disk is full."""

    reason = "no_space"


@dataclasses.dataclass(frozen=True)
class FreeSpace:
    """What may still be written into the scratch file system."""

    bytes: int
    #: Files (inodes) that may still be made; None on a file system that does not count them.
    files: int | None


@dataclasses.dataclass
class StagedBytes:
    """A staged file, open, with the hash and size of what it holds."""

    file: BinaryIO
    sha256: str
    size: int

    @property
    def path(self) -> str:
        """A path to this open file for a library that opens paths: it names the file
        opened and checked, whatever is renamed or linked in the folder since."""
        return f"/proc/self/fd/{self.file.fileno()}"

    def __enter__(self) -> StagedBytes:
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()


class Scratch:
    def __init__(self, root: str):
        self.root = root
        make_private_dir(root)

    def create(self, job_id: int, token: str, name) -> BinaryIO:
        """A new file of the attempt, open for writing (its folder is made on first use).
        A file of that name is replaced, never written through: it may be a link."""
        name = _plain(name)
        with self._folder_fd(job_id, token, create=True) as folder:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=folder)
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=folder)
        return os.fdopen(fd, "wb")

    @contextlib.contextmanager
    def target(self, job_id: int, token: str, name) -> Iterator[str]:
        """A path for a library that writes the attempt's file `name` itself (the
        download): through the attempt's folder, held open meanwhile."""
        name = _plain(name)
        with self._folder_fd(job_id, token, create=True) as folder:
            yield f"/proc/self/fd/{folder}/{name}"

    def open_staged(self, job_id: int, token: str, name) -> StagedBytes:
        """A file an earlier step of the attempt wrote, named by the job's artifacts: a
        regular file with no other link, inside the attempt's folder, or PermanentError
        (bad_artifacts); ScratchFilesMissing when it is not there. Hashed from the open
        file: what is hashed is what is read after (rewound), sent or decoded."""
        name = _plain(name)
        with self._folder_fd(job_id, token) as folder:
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
            except FileNotFoundError:
                raise self._missing(name) from None
            except OSError as e:
                if e.errno == errno.ELOOP:
                    raise PermanentError(f"the staged file {name!r} is a symlink", "bad_artifacts") from None
                raise
        f = os.fdopen(fd, "rb")
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise PermanentError(f"the staged file {name!r} is not a regular file", "bad_artifacts")
            if st.st_nlink != 1:
                # Another name for another file's bytes (or one others may change).
                raise PermanentError(f"the staged file {name!r} has {st.st_nlink} links", "bad_artifacts")
            digest, size = hashlib.sha256(), 0
            while chunk := f.read(HASH_CHUNK):
                digest.update(chunk)
                size += len(chunk)
            f.seek(0)
        except BaseException:
            f.close()
            raise
        return StagedBytes(f, digest.hexdigest(), size)

    def open_source(self, job_id: int, token: str, name, sha256: str) -> StagedBytes:
        """The original as the fetch hashed it, open; ScratchFilesChanged if it holds other bytes."""
        staged = self.open_staged(job_id, token, name)
        if staged.sha256 != sha256:
            staged.file.close()
            raise ScratchFilesChanged(f"the original {name!r} holds {staged.size} bytes of sha256 "
                                      f"{staged.sha256[:16]}, not the bytes of {str(sha256)[:16]} the fetch hashed")
        return staged

    def unlink(self, job_id: int, token: str, name) -> None:
        name = _plain(name)
        with self._folder_fd(job_id, token) as folder, contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=folder)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around a step's writes into scratch: a full disk is NoSpace, not a bare OSError."""
        try:
            yield
        except OSError as e:
            if e.errno in NO_SPACE:
                raise NoSpace(f"the scratch directory {self.root} is full: {e.strerror}") from e
            raise

    def free_space(self) -> FreeSpace:
        """What this process may still write into the scratch directory's file system
        (made again if it was removed: the attempts' folders go under it)."""
        make_private_dir(self.root)
        st = os.statvfs(self.root)
        return FreeSpace(st.f_bavail * st.f_frsize, st.f_favail if st.f_files else None)

    def remove(self, job_id: int, token: str) -> None:
        self._remove(_attempt_name(job_id, token))

    def attempts(self) -> list[tuple[int, str]]:
        """The attempts that have a folder here."""
        return [(int(m.group(1)), m.group(2)) for m in map(ATTEMPT.fullmatch, os.listdir(self.root)) if m]

    def sweep(self, listed: list[tuple[int, str]], current: set[tuple[int, str]]) -> int:
        """Removes the folders of the attempts `listed` (by attempts(), before `current` was
        read) that are not `current`; returns how many. A folder made after the listing is
        left alone: its attempt may have begun since, and a folder not named like an attempt
        is not ours to remove."""
        gone = [f"{job}-{token}" for job, token in listed if (job, token) not in current]
        for name in gone:
            self._remove(name)
        return len(gone)

    def _remove(self, name: str) -> None:
        # rmtree with dir_fd removes a symlink's name, never what it points to.
        with contextlib.suppress(OSError), _opened(self.root) as root:
            if stat.S_ISDIR(os.stat(name, dir_fd=root, follow_symlinks=False).st_mode):
                shutil.rmtree(name, dir_fd=root, ignore_errors=True)
            else:
                os.unlink(name, dir_fd=root)

    @contextlib.contextmanager
    def _folder_fd(self, job_id: int, token: str, create: bool = False) -> Iterator[int]:
        """The attempt's folder, opened without following a symlink."""
        name = _attempt_name(job_id, token)
        with _opened(self.root) as root:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o700, dir_fd=root)
            try:
                folder = os.open(name, DIRECTORY, dir_fd=root)
            except FileNotFoundError:
                raise ScratchFilesMissing(f"the folder of this attempt is not in this host's scratch "
                                          f"directory ({self.root})") from None
            except OSError as e:
                if e.errno in NOT_A_FOLDER:
                    raise PermanentError(f"the scratch folder {name} is a symlink or not a folder",
                                         "bad_artifacts") from None
                raise
        try:
            yield folder
        finally:
            os.close(folder)

    def _missing(self, name: str) -> ScratchFilesMissing:
        return ScratchFilesMissing(f"{name!r} of this attempt is not in this host's scratch directory ({self.root})")


def make_private_dir(root: str) -> None:
    """Makes the scratch directory 0700 if it is not there; ScratchDirUnsafe unless it is
    a directory of this user that no one else may write into (another local user could
    otherwise make it first, and plant or read the attempts' files)."""
    os.makedirs(os.path.dirname(os.path.abspath(root)), exist_ok=True)
    try:
        os.mkdir(root, 0o700)
        os.chmod(root, 0o700)  # whatever the umask
    except FileExistsError:
        pass
    st = os.lstat(root)
    problem = None
    if stat.S_ISLNK(st.st_mode):
        problem = "is a symlink"
    elif not stat.S_ISDIR(st.st_mode):
        problem = "is not a directory"
    elif st.st_uid != os.geteuid():
        problem = f"is owned by uid {st.st_uid}, not by this worker's uid {os.geteuid()}"
    elif st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = f"is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    if problem:
        raise ScratchDirUnsafe(f"SCRATCH_DIR {root} {problem}: the worker needs a directory of its own "
                               "(owned by its user, mode 0700, not a symlink)")


@contextlib.contextmanager
def _opened(directory: str) -> Iterator[int]:
    fd = os.open(directory, DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


def _attempt_name(job_id: int, token: str) -> str:
    folder = f"{job_id}-{token}"
    if not ATTEMPT.fullmatch(folder):
        raise PermanentError(f"not an attempt: job {job_id!r}, token {token!r}", "bad_artifacts")
    return folder


def _plain(name) -> str:
    if not isinstance(name, str) or not FILE_NAME.fullmatch(name):
        raise PermanentError(f"the job's artifacts name {str(name)[:100]!r}, not a plain file name of its "
                             "attempt's folder", "bad_artifacts")
    return name

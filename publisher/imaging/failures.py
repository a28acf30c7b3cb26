"""libvips and libheif report every failure the same way, whatever its cause:
these phrases mark the machine's failures (memory, threads, disk, files),
which another attempt may not meet, apart from the file's, which no retry mends."""

from __future__ import annotations

from ..errors import TransientError

MACHINE_FAILURES = (
    "out of memory", "cannot allocate memory", "memory allocation", "insufficient memory",
    "error creating thread", "resource temporarily unavailable",
    "no space left on device", "disk quota exceeded", "read-only file system", "too many open files",
)


#: libheif calls a file that asks for too much memory a "memory allocation error"
#: too: that one is the file's doing.
FILE_LIMITS = ("security limit",)


def machine_failure(detail: str) -> bool:
    detail = detail.lower()
    return any(p in detail for p in MACHINE_FAILURES) and not any(p in detail for p in FILE_LIMITS)


def lack_of_resources(fmt: str, detail: str) -> TransientError:
    return TransientError(f"{fmt} not decoded for lack of resources on this worker, not the file's fault "
                          f"(retried): {detail}")

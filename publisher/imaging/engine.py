"""How libvips runs in this process. Imported for its effect by input.py, which
makes every job's first libvips call (the probe; render needs its result), so
every worker process is configured before it decodes anything.

Each choice below was measured; the figures and commands are in BENCHMARKS.md.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

import pyvips

# Every job reads a different file, so libvips' operation cache never hits; it
# only keeps finished images' memory alive, raising every job's peak.
pyvips.cache_set_max(0)

#: libvips threads per image. A worker runs several jobs at once (processes x
#: CONCURRENCY threads), which keeps the cores busy already; libvips' own pool
#: (one thread per core by default) then only adds synchronisation: one thread
#: costs less CPU and memory at the same wall time (the JPEG decode and the WebP
#: encode run sequentially anyway).
DEFAULT_VIPS_CONCURRENCY = 1

#: glibc malloc arenas per process. glibc gives each thread that allocates
#: concurrently an arena of its own, and a freed image buffer stays in its arena's
#: pages, which raises the peak of every encode. One arena keeps the throughput.
DEFAULT_MALLOC_ARENA_MAX = 1
_M_ARENA_MAX = -8  # from glibc's malloc.h

logger = logging.getLogger(__name__)


def _operator_setting(name: str, default: int) -> int:
    """The library's own variable when an operator set it (it may have come from a
    .env file read after the library started, so it is applied here, not left to
    the library), else the worker's default."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    logger.warning("%s=%r is not a positive whole number; using %s", name, raw, default)
    return default


#: The libvips loaders of the formats we publish (detect.SUPPORTED), by the nickname
#: prefix libvips records in an image's "vips-loader". HEIC is decoded by
#: pillow-heif, but libvips' HEIF loader also reads AVIF.
LOADERS = {"jpeg": "jpegload", "png": "pngload", "gif": "gifload", "webp": "webpload", "tiff": "tiffload",
           "heic": "heifload", "avif": "heifload"}
#: Their classes: every other loader (svg, csv, matrix, vips, uhdr, raw, ...) is
#: blocked, so no file reaches a decoder we did not choose, whatever its bytes say.
ALLOWED_LOADER_CLASSES = ("VipsForeignLoadJpeg", "VipsForeignLoadPng", "VipsForeignLoadNsgif",
                          "VipsForeignLoadWebp", "VipsForeignLoadTiff", "VipsForeignLoadHeif")


def allow_only_our_loaders() -> None:
    pyvips.block_untrusted_set(True)
    pyvips.operation_block_set("VipsForeignLoad", True)
    for name in ALLOWED_LOADER_CLASSES:
        pyvips.operation_block_set(name, False)


allow_only_our_loaders()
pyvips.concurrency_set(_operator_setting("VIPS_CONCURRENCY", DEFAULT_VIPS_CONCURRENCY))
if platform.libc_ver()[0] == "glibc":
    ctypes.CDLL(None).mallopt(_M_ARENA_MAX, _operator_setting("MALLOC_ARENA_MAX", DEFAULT_MALLOC_ARENA_MAX))

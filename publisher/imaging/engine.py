"""How libvips runs in this process. Imported for its effect by the stages
that call libvips, so every worker process is configured the same way.

Measured for the benchmarks issue (#5); figures and commands in BENCHMARKS.md.
"""

from __future__ import annotations

import ctypes
import os
import platform

import pyvips

# Every job reads a different file, so libvips' operation cache never hits; it
# only keeps finished images' memory alive (7 MB more peak RSS per 12 MP photo).
pyvips.cache_set_max(0)

#: libvips threads per image. A worker runs several jobs at once (processes x
#: CONCURRENCY threads), which keeps the cores busy already; libvips' own pool
#: (one thread per core by default) then only adds synchronisation: one thread
#: measured 7 % less CPU and 3 MB less RSS for a 24 MP JPEG at the same wall time
#: (the JPEG decode and the WebP encode run sequentially anyway). libvips'
#: VIPS_CONCURRENCY still decides when an operator sets it.
DEFAULT_VIPS_CONCURRENCY = 1
if not os.environ.get("VIPS_CONCURRENCY"):
    pyvips.concurrency_set(DEFAULT_VIPS_CONCURRENCY)

#: glibc malloc arenas per process. glibc gives each thread that allocates
#: concurrently an arena of its own, and a freed image buffer stays in its arena's
#: pages: the 1600 px WebP encode of a 12 MP photo then peaked at 68 MB instead
#: of 63 MB. One arena measured the same throughput within noise (2 processes x
#: 3 threads, 80 images). glibc's own MALLOC_ARENA_MAX still decides when set.
DEFAULT_MALLOC_ARENA_MAX = 1
_M_ARENA_MAX = -8  # from glibc's malloc.h

if platform.libc_ver()[0] == "glibc" and not os.environ.get("MALLOC_ARENA_MAX"):
    ctypes.CDLL(None).mallopt(_M_ARENA_MAX, DEFAULT_MALLOC_ARENA_MAX)

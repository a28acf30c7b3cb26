"""Memory per job: how much a render of a source may take at its peak, and a
budget per worker process that each render reserves its share from before it
decodes a pixel.

Most sources stream: libvips reads a baseline JPEG (shrunk while it loads), a
non-interlaced PNG, a TIFF or a still WebP a few lines at a time, so a job
holds little more than its largest variant. Some cannot: a progressive JPEG
keeps every DCT coefficient, an interlaced PNG, a GIF, an animation, HEIC and
AVIF are decoded whole, and HEIC is then copied once into libvips. For those
the peak grows with the pixel count, up to gigabytes at MAX_SOURCE_PIXELS.

The budget bounds what the renders of one process hold at once: a job waits
until its share is free, and a source whose share is more than the whole
budget is refused, permanently, before decoding. So a worker process's memory
is its baseline plus at most MEMORY_BUDGET_MB, whatever arrives. The factors
below are bytes per source pixel, measured with `python -m bench.peak_per_format`
(BENCHMARKS.md) and rounded up.
"""

from __future__ import annotations

import contextlib
import threading
import time

from ..errors import PermanentError, TransientError

MIB = 1024 * 1024
#: What any render holds besides the decoded source: its variants, the encoders' buffers.
BASE_BYTES = 48 * MIB
#: Bytes per source pixel and per byte of a decoded pixel, for the sources decoded whole.
WHOLE_DECODE_FACTOR = {
    "jpeg": 2.2,  # progressive: every DCT coefficient (2 bytes a sample), then the image
    "png": 1.5,  # interlaced: the whole image, then its conversion
    "gif": 2.0,  # every frame, then the strip of frames
    "webp": 2.0,  # an animation: every frame
    "tiff": 1.5,  # never used: TIFF streams by strips or tiles
    "heic": 3.3,  # decoded by libheif (YCbCr planes, then RGB), copied into libvips, converted
    "avif": 5.5,  # decoded by libheif inside libvips: planes, RGB, and libvips' own copy
}
#: For the sources that stream: bytes per pixel of the largest variant (the
#: variant in memory, the next one made from it, the encoder's copy), and per
#: source pixel (the shrinking's line buffers grow with the source's width).
STREAMING_VARIANT_FACTOR = 4 * 4
STREAMING_SOURCE_FACTOR = 1.0
#: When the variants' quality is searched (imaging/targeting.py), per pixel of the largest variant:
#: a probe decoded, and the SSIMULACRA2 score's buffers (both images in linear light, the scales,
#: the maps), above the measured growth of a 12 MP job searched against a fixed one (BENCHMARKS.md,
#: "Quality targets").
SEARCH_VARIANT_FACTOR = 28
#: How long a job waits for its share before it is retried later (well within
#: the step's time limit).
WAIT_SECONDS = 120


def job_bytes(probed, frames: int, largest_variant: int, searched: bool) -> int:
    """The most one render of this source is expected to hold, in bytes (searched: the variants'
    quality is searched for a target, not fixed)."""
    pixels = probed.width * probed.height * max(1, frames)
    search = largest_variant * largest_variant * SEARCH_VARIANT_FACTOR if searched else 0
    if decoded_whole(probed, frames):
        return BASE_BYTES + search + int(pixels * probed.bytes_per_pixel * WHOLE_DECODE_FACTOR[probed.format])
    return BASE_BYTES + search + largest_variant * largest_variant * STREAMING_VARIANT_FACTOR + \
        int(pixels * STREAMING_SOURCE_FACTOR)


def decoded_whole(probed, frames: int) -> bool:
    """Whether the decoder must hold the whole source at once (it cannot stream it)."""
    if probed.format in ("heic", "avif", "gif") or frames > 1:
        return True
    return probed.format in ("jpeg", "png") and probed.interlaced


class Budget:
    """Bytes the renders of one process may hold at once."""

    def __init__(self, total: int):
        self.total = total
        self.reserved = 0
        self._free = threading.Condition()

    @contextlib.contextmanager
    def reserve(self, nbytes: int, what: str, wait_seconds: float = WAIT_SECONDS):
        if nbytes > self.total:
            raise PermanentError(
                f"{what} needs about {nbytes // MIB} MB to decode, more than MEMORY_BUDGET_MB={self.total // MIB} "
                "(refused before decoding)")
        deadline = time.monotonic() + wait_seconds
        with self._free:
            while self.reserved + nbytes > self.total:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TransientError(f"{what} waited {wait_seconds:g} s for {nbytes // MIB} MB of "
                                         f"MEMORY_BUDGET_MB={self.total // MIB}; retried later")
                self._free.wait(left)
            self.reserved += nbytes
        try:
            yield
        finally:
            with self._free:
                self.reserved -= nbytes
                self._free.notify_all()


_budgets: dict[int, Budget] = {}
_budgets_lock = threading.Lock()


def process_budget(total: int) -> Budget:
    """This process's budget (one per size: every job of a process is given the same)."""
    with _budgets_lock:
        return _budgets.setdefault(total, Budget(total))

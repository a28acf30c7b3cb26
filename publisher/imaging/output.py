"""Stage 4: encoding. No EXIF, XMP, IPTC or ICC in what buyers download
(keep="none"): no GPS position ever leaves with a picture, and untagged
pixels are read as sRGB, which they are."""

from __future__ import annotations

import pyvips

from .options import AVIF_EFFORT

CONTENT_TYPES = {"webp": "image/webp", "avif": "image/avif"}
#: libwebp effort (0-6, CPU against bytes). Lower than libvips' default, 4: it halves
#: the encode's CPU for slightly more bytes at the same quality (BENCHMARKS.md).
WEBP_EFFORT = 2
#: Formats that carry an animation; the others are skipped for animated sources
#: (a <picture> then falls back to the animated WebP).
ANIMATED_FORMATS = ("webp",)


def encode(image: pyvips.Image, fmt: str, quality: int, avif_effort: int = AVIF_EFFORT) -> bytes:
    """`image` in `fmt` at the encoder's quality (1-100); an AVIF at libaom's avif_effort."""
    if fmt == "webp":
        return image.webpsave_buffer(Q=quality, effort=WEBP_EFFORT, keep="none")
    if fmt == "avif":
        return image.heifsave_buffer(Q=quality, compression="av1", effort=avif_effort, keep="none")
    raise ValueError(f"no encoder for {fmt!r}")


def can_animate(fmt: str) -> bool:
    return fmt in ANIMATED_FORMATS

"""Stage 4: encoding. No EXIF, XMP, IPTC or ICC in what buyers download
(keep="none"): no GPS position ever leaves with a picture, and untagged
pixels are read as sRGB, which they are."""

from __future__ import annotations

import pyvips

from .options import OutputOptions

CONTENT_TYPES = {"webp": "image/webp", "avif": "image/avif"}
#: libwebp effort (0-6, CPU against bytes). libvips' default, 4, spends 0.17 s of CPU on a
#: 1600 px variant; 2 spends 0.08 s for 3 % more bytes at the same quality setting (PSNR
#: within 0.3 dB): measured by the benchmarks issue (#5), BENCHMARKS.md.
WEBP_EFFORT = 2
#: libaom effort 0-9; 2 took 0.4-1.4 s for a 1600 px variant here, 4 took 4-5 s.
AVIF_EFFORT = 2
#: Formats that carry an animation; the others are skipped for animated sources
#: (a <picture> then falls back to the animated WebP).
ANIMATED_FORMATS = ("webp",)


def encode(image: pyvips.Image, fmt: str, options: OutputOptions) -> bytes:
    if fmt == "webp":
        return image.webpsave_buffer(Q=options.webp_quality, effort=WEBP_EFFORT, keep="none")
    if fmt == "avif":
        return image.heifsave_buffer(
            Q=options.avif_quality, compression="av1", effort=AVIF_EFFORT, keep="none"
        )
    raise ValueError(f"no encoder for {fmt!r}")


def can_animate(fmt: str) -> bool:
    return fmt in ANIMATED_FORMATS

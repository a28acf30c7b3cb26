"""Stage 2: sizes. Each variant fits inside size x size and is never upscaled.

The largest variant is decoded with shrink-on-load (a JPEG is decoded at 1/2,
1/4 or 1/8 of its size when that is enough, which is most of the cost saved);
the smaller variants are made from it rather than from the original. libvips'
thumbnail applies the EXIF orientation, so every output is upright.
"""

from __future__ import annotations

import math

import pyvips

from .input import Probe, Source


def fit(width: int, height: int, size: int) -> tuple[int, int]:
    """The size of a width x height image fitted inside size x size, never upscaled."""
    scale = min(1.0, size / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def first_variant(source: Source, size: int, colour_options: dict) -> pyvips.Image:
    """The largest variant, decoded once, in memory (the smaller ones read it again)."""
    shrink = jpeg_shrink_on_load(source.probe, size) if source.probe.format == "jpeg" else 1
    if source.filename is not None and shrink > 1:
        # libvips' thumbnail leaves a factor of 2 to its own resize, so it decoded a
        # 12 or 24 MP JPEG at full size for a 1600 px variant. libjpeg can shrink while
        # it decodes: like sharp, take the largest shrink that still covers the target
        # (less CPU and memory, with no visible difference from the full decode; BENCHMARKS.md).
        decoded = pyvips.Image.new_from_file(source.filename, access="sequential", shrink=shrink,
                                             **source.load_options)
        if source.probe.interpretation == "srgb" and not decoded.get_typeof("icc-profile-data"):
            colour_options = {}  # untagged sRGB: an sRGB -> sRGB transform changes no pixel
        return decoded.thumbnail_image(size, height=size, size="down", **colour_options)
    if source.filename is not None:
        return pyvips.Image.thumbnail(source.filename, size, height=size, size="down",
                                      **source.load_options, **colour_options)
    if source.image is None:
        raise ValueError("a source with neither a file nor an image")
    return source.image.thumbnail_image(size, height=size, size="down", **colour_options)


def jpeg_shrink_on_load(probed: Probe, size: int) -> int:
    """The largest libjpeg shrink (8, 4, 2) whose decoded image still covers the fitted variant."""
    long_edge, short_edge = max(probed.width, probed.height), min(probed.width, probed.height)
    target_long = min(size, long_edge)
    target_short = math.ceil(short_edge * target_long / long_edge)
    for shrink in (8, 4, 2):
        if long_edge // shrink >= target_long and short_edge // shrink >= target_short:
            return shrink
    return 1


def smaller_variant(base: pyvips.Image, original: tuple[int, int], size: int) -> pyvips.Image:
    """A smaller variant made from the larger one, at the size fitted from the
    original (so rounding does not add up: 2000x1072 at 400 is 400x214, not 400x215)."""
    width, height = fit(*original, size)
    if base.get_typeof("page-height") and base.get("page-height") != base.height:
        return base.thumbnail_image(size, height=size, size="down")  # an animation: per-frame fitting
    if (base.width, base.height) == (width, height):
        return base
    return base.thumbnail_image(width, height=height, size="force")


def first_frame(image: pyvips.Image) -> pyvips.Image:
    """An animation's first frame; a still image itself."""
    if image.get_typeof("page-height") and image.get("page-height") < image.height:
        return image.crop(0, 0, image.width, image.get("page-height"))
    return image


def frame_height(image: pyvips.Image) -> int:
    """The height of one frame (an animation is a vertical strip of frames)."""
    return image.get("page-height") if image.get_typeof("page-height") else image.height

"""Stage 2: sizes. Each variant fits inside size x size and is never upscaled.

The largest variant is decoded with shrink-on-load (a JPEG is decoded at 1/2,
1/4 or 1/8 of its size when that is enough, which is most of the cost saved);
the smaller variants are made from it rather than from the original. libvips'
thumbnail applies the EXIF orientation, so every output is upright.
"""

from __future__ import annotations

import pyvips

from .input import Source


def fit(width: int, height: int, size: int) -> tuple[int, int]:
    """The size of a width x height image fitted inside size x size, never upscaled."""
    scale = min(1.0, size / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def first_variant(source: Source, size: int, colour_options: dict) -> pyvips.Image:
    """The largest variant, decoded once, in memory (the smaller ones read it again)."""
    if source.filename is not None:
        image = pyvips.Image.thumbnail(source.filename, size, height=size, size="down",
                                       **source.load_options, **colour_options)
    else:
        image = source.image.thumbnail_image(size, height=size, size="down", **colour_options)
    return image


def smaller_variant(base: pyvips.Image, original: tuple[int, int], size: int) -> pyvips.Image:
    """A smaller variant made from the larger one, at the size fitted from the
    original (so rounding does not add up: 2000x1072 at 400 is 400x214, not 400x215)."""
    width, height = fit(*original, size)
    if base.get_typeof("page-height") and base.get("page-height") != base.height:
        return base.thumbnail_image(size, height=size, size="down")  # an animation: per-frame fitting
    if (base.width, base.height) == (width, height):
        return base
    return base.thumbnail_image(width, height=height, size="force")


def frame_height(image: pyvips.Image) -> int:
    """The height of one frame (an animation is a vertical strip of frames)."""
    return image.get("page-height") if image.get_typeof("page-height") else image.height

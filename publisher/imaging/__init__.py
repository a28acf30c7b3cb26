"""Originals in, variants out, split by stage as sharp splits its pipeline:

  detect.py       what a file is, from its magic bytes (sniff)
  input.py        header probe and limits (before decoding), opening the source (HEIC via pillow-heif)
  resize.py       fitting, never upscaling, EXIF orientation, shrink-on-load
  colour.py       ICC conversion to 8-bit sRGB (CMYK through a CMYK profile), alpha kept
  output.py       WebP / AVIF encoding, no metadata
  targeting.py    each variant's encoder quality, searched for its perceived-quality target
  placeholder.py  inline LQIP and dominant colour for the front end
  options.py      every stage's options, defaults and validation (no pyvips: config reads it)
  pipeline.py     the stages in order, and the recipe version
  engine.py       how libvips runs in a worker process (cache, threads, malloc arenas)

Attributes are imported on first use, so importing publisher.imaging.options
(as publisher.settings.schema does) does not load libvips.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "sniff": "detect", "SUPPORTED": "detect", "HEIF_BRANDS": "detect", "TRANSPOSING_ORIENTATIONS": "input",
    "probe": "input", "Probe": "input", "PILLOW_HEIF_FORMATS": "input",
    "render": "pipeline", "Rendition": "pipeline", "Variant": "pipeline",
    "recipe_version": "pipeline", "decoder_versions": "pipeline",
    "Recipe": "options", "InputOptions": "options", "ResizeOptions": "options", "OutputOptions": "options",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

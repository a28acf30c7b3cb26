"""The options of every imaging stage, their defaults (written once, here) and
their validation (at construction, so no stage ever sees a bad value).

This module does not import pyvips: publisher.settings.schema reads VARIANTS,
VARIANT_FORMATS and MEMORY_BUDGET_MB with these parsers and defaults, and the
listener never loads libvips. The other values are constants, not settings: they
decide the published bytes, so they change with the recipe, in code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

#: Output formats the output stage can encode, in the order they are offered.
FORMATS = ("webp", "avif")

#: Variant names and long-edge sizes in pixels (VARIANTS).
DEFAULT_VARIANTS = (("thumb", 400), ("display", 1600))
#: Formats every variant is published in (VARIANT_FORMATS); webp is always first.
DEFAULT_FORMATS = ("webp",)
#: Encoder quality, 1-100. AVIF at 50 looks like WebP at 80.
DEFAULT_WEBP_QUALITY = 80
DEFAULT_AVIF_QUALITY = 50
#: An animation with more frames than this is published as its first frame.
DEFAULT_MAX_ANIMATION_FRAMES = 100
#: Sources with more pixels (per frame, from the header) are refused before decoding (MAX_SOURCE_PIXELS).
DEFAULT_MAX_SOURCE_PIXELS = 150_000_000
#: Memory the renders of one worker process may hold at once, in MiB (MEMORY_BUDGET_MB).
DEFAULT_MEMORY_BUDGET_MB = 1024


def parse_variants(raw: str) -> tuple[tuple[str, int], ...]:
    """`thumb:400,display:1600` -> (("thumb", 400), ("display", 1600)); ValueError if malformed."""
    variants = []
    for item in raw.split(","):
        name, _, size = item.strip().partition(":")
        if not name.isidentifier() or not size.isdigit() or int(size) < 1:
            raise ValueError(f"expected name:size,... (e.g. thumb:400,display:1600), got {raw!r}")
        variants.append((name, int(size)))
    return ResizeOptions(tuple(variants)).variants


def parse_formats(raw: str) -> tuple[str, ...]:
    """`webp,avif` -> ("webp", "avif"); webp is always published (it is the contract's format)."""
    names = [f.strip().lower() for f in raw.split(",") if f.strip()]
    return OutputOptions(formats=tuple(dict.fromkeys(["webp", *names]))).formats


def _check_quality(name: str, value: int) -> None:
    if not isinstance(value, int) or not 1 <= value <= 100:
        raise ValueError(f"{name} must be an integer from 1 to 100, got {value!r}")


@dataclasses.dataclass(frozen=True)
class InputOptions:
    """What the input stage accepts."""

    #: Pixels of one frame, read from the header; more is refused before decoding.
    max_pixels: int = DEFAULT_MAX_SOURCE_PIXELS
    #: Animations with more frames (or more pixels in all frames than max_pixels) keep their first frame.
    max_animation_frames: int = DEFAULT_MAX_ANIMATION_FRAMES
    #: Bytes the renders of one process may hold at once (imaging/memory.py); a
    #: source that needs more is refused before decoding. It changes no published byte.
    memory_budget: int = DEFAULT_MEMORY_BUDGET_MB * 1024 * 1024

    def __post_init__(self):
        if not isinstance(self.max_pixels, int) or self.max_pixels < 1:
            raise ValueError(f"max_pixels must be a positive integer, got {self.max_pixels!r}")
        if not isinstance(self.max_animation_frames, int) or self.max_animation_frames < 1:
            raise ValueError(f"max_animation_frames must be a positive integer, got {self.max_animation_frames!r}")
        if not isinstance(self.memory_budget, int) or self.memory_budget < 1:
            raise ValueError(f"memory_budget must be a positive integer, got {self.memory_budget!r}")


@dataclasses.dataclass(frozen=True)
class ResizeOptions:
    """Named variants, each fitted inside size x size, never upscaled."""

    variants: tuple[tuple[str, int], ...] = DEFAULT_VARIANTS

    def __post_init__(self):
        if not self.variants:
            raise ValueError("at least one variant is needed")
        names = [name for name, _ in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        for name, size in self.variants:
            if not str(name).isidentifier() or not isinstance(size, int) or size < 1:
                raise ValueError(f"a variant is a name and a positive size, got {name!r}:{size!r}")

    @property
    def largest_first(self) -> tuple[tuple[str, int], ...]:
        return tuple(sorted(self.variants, key=lambda v: v[1], reverse=True))


@dataclasses.dataclass(frozen=True)
class OutputOptions:
    """Encoders and their quality. Every output is sRGB with no metadata at all."""

    formats: tuple[str, ...] = DEFAULT_FORMATS
    webp_quality: int = DEFAULT_WEBP_QUALITY
    avif_quality: int = DEFAULT_AVIF_QUALITY

    def __post_init__(self):
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise ValueError(f"formats must be among {', '.join(FORMATS)}, got {', '.join(self.formats) or 'none'}")
        if self.formats[0] != "webp":
            raise ValueError("webp must be the first format: the variants JSON is webp at its top level")
        _check_quality("webp_quality", self.webp_quality)
        _check_quality("avif_quality", self.avif_quality)

    def quality(self, fmt: str) -> int:
        return {"webp": self.webp_quality, "avif": self.avif_quality}[fmt]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that changes the published bytes. Its version is stored with
    each published file, so files made by an older recipe can be found and redone."""

    input: InputOptions = InputOptions()
    resize: ResizeOptions = ResizeOptions()
    output: OutputOptions = OutputOptions()

    @classmethod
    def from_settings(cls, settings) -> Recipe:
        return cls(
            InputOptions(memory_budget=settings.memory_budget_mb * 1024 * 1024),
            ResizeOptions(settings.variants),
            OutputOptions(settings.variant_formats),
        )

    def describe(self, decoder_versions: dict[str, str]) -> dict:
        """The canonical description hashed into the version (max_pixels and
        memory_budget are left out: they refuse files, they do not change the
        bytes of those they take)."""
        return {
            "variants": [list(v) for v in self.resize.variants],
            "formats": list(self.output.formats),
            "quality": {f: self.output.quality(f) for f in self.output.formats},
            "max_animation_frames": self.input.max_animation_frames,
            "decoders": decoder_versions,
        }

    def version(self, decoder_versions: dict[str, str]) -> str:
        """A short hash (12 hex digits) of describe()."""
        canonical = json.dumps(self.describe(decoder_versions), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

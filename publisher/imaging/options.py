"""The options of every imaging stage, their defaults (written once, here) and
their validation (at construction, so no stage ever sees a bad value).

This module does not import pyvips: publisher.settings.schema reads VARIANTS,
VARIANT_FORMATS, VARIANT_QUALITY and MEMORY_BUDGET_MB with these parsers and
defaults, and the listener never loads libvips. The other values are constants, not settings: they
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
#: VARIANT_QUALITY: a fixed encoder quality, WebP 80. `auto` (each variant at the quality that
#: reaches its perceived-quality target) is opt-in: its search costs more CPU and memory per job
#: than one encode (BENCHMARKS.md, "Quality targets").
DEFAULT_QUALITY = "q80"
#: auto's SSIMULACRA2 targets (100 is identical, 90 visually lossless, 70 high quality), by default
#: variant name and size; a variant of another name takes the target of the one nearest its size.
#: Each is the highest at which that variant's bytes, over the quality corpus' 41 photographs, stay
#: within those of the fixed WebP q80 (docs/imaging.md#quality-targets): the same bytes, spent where
#: they are seen; the worst 10% then score 2.6 (display) and 4.8 (thumb) points higher.
AUTO_TARGETS = (("thumb", 400, 75.0), ("display", 1600, 72.5))
#: A target is reached when the score lands within this many points of it: each probe of the
#: search costs an encode and a score, and a wider band needs fewer (at +-2, 10% fewer, for a
#: worst case 0.5 point lower).
TOLERANCE = 1.5
#: Encoder qualities the search may choose from, per format: below, artefacts no target excuses;
#: above, bytes grow much faster than the score (WebP 95 -> 100 doubles them).
QUALITY_RANGES = {"webp": (40, 95), "avif": (30, 80)}
#: libaom's effort, 0-9: each step up multiplies the encode's CPU for a few percent fewer bytes
#: (BENCHMARKS.md). A fixed quality encodes once, at AVIF_EFFORT; a search encodes each probe, at
#: AVIF_SEARCH_EFFORT, where an AVIF costs about a WebP's CPU ("Quality targets" there).
AVIF_EFFORT = 2
AVIF_SEARCH_EFFORT = 0
#: Bumped whenever the search or the metric would choose another quality for some image: the
#: bytes change, so the recipe must.
TARGETING_VERSION = 1
#: Targets an operator may name: below 30 is a low quality no auction wants, above 95 no encoder
#: setting in the ranges reaches.
MIN_TARGET, MAX_TARGET = 30.0, 95.0
#: A fixed quality's AVIF: this share of the WebP quality (`q80`: AVIF 50).
#: (Over the quality corpus AVIF 50 scores as WebP 75 in the median: a fixed AVIF is a little worse.)
AVIF_SHARE_OF_FIXED_QUALITY = 50 / 80
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


def parse_quality(raw: str) -> QualityOptions:
    """`auto`, `thumb:78,display:74` (SSIMULACRA2 targets; variants not named keep auto's) or `q80`
    (a fixed encoder quality: WebP 80, AVIF 50); ValueError if malformed."""
    text = raw.strip()
    if text.lower() == "auto":
        return QualityOptions()
    if text[:1] in ("q", "Q") and text[1:].isdigit():
        return QualityOptions(fixed=int(text[1:]))
    targets = []
    for item in text.split(","):
        name, _, value = item.strip().partition(":")
        try:
            targets.append((name, float(value)))
        except ValueError:
            raise ValueError(f"expected auto, q1-q100, or name:score,... (e.g. thumb:78,display:74), got {raw!r}")\
                from None
    return QualityOptions(targets=tuple(targets))


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
class QualityOptions:
    """VARIANT_QUALITY: a SSIMULACRA2 target per variant (auto's, or the operator's), or one fixed
    encoder quality for every variant."""

    #: `qN`: WebP at N and AVIF at AVIF_SHARE_OF_FIXED_QUALITY of N, no search. None: targets.
    fixed: int | None = None
    #: Targets the operator named; the other variants take auto's (AUTO_TARGETS).
    targets: tuple[tuple[str, float], ...] = ()

    def __post_init__(self):
        if self.fixed is not None:
            _check_quality("a fixed quality", self.fixed)
            if self.targets:
                raise ValueError("a fixed quality takes no targets")
        names = [name for name, _ in self.targets]
        if len(set(names)) != len(names):
            raise ValueError(f"each variant takes one target, got {', '.join(names)}")
        for name, target in self.targets:
            if not str(name).isidentifier() or not isinstance(target, float) or not MIN_TARGET <= target <= MAX_TARGET:
                raise ValueError(f"a target is a variant name and a SSIMULACRA2 score from {MIN_TARGET:g} to "
                                 f"{MAX_TARGET:g}, got {name!r}:{target!r}")

    def target(self, name: str, size: int) -> float | None:
        """The variant's target score; None when the quality is fixed."""
        if self.fixed is not None:
            return None
        named = {auto: target for auto, _, target in AUTO_TARGETS} | dict(self.targets)
        if name in named:
            return named[name]
        return min(AUTO_TARGETS, key=lambda t: (abs(t[1] - size), t[1]))[2]

    def fixed_quality(self, fmt: str) -> int:
        if self.fixed is None:
            raise ValueError("the quality is searched, not fixed")
        return {"webp": self.fixed, "avif": max(1, round(self.fixed * AVIF_SHARE_OF_FIXED_QUALITY))}[fmt]

    def describe(self, variants: tuple[tuple[str, int], ...], formats: tuple[str, ...]) -> dict:
        if self.fixed is not None:
            return {fmt: self.fixed_quality(fmt) for fmt in formats}
        return {"targets": {name: self.target(name, size) for name, size in variants},
                "tolerance": TOLERANCE, "ranges": {fmt: list(QUALITY_RANGES[fmt]) for fmt in formats},
                "search": TARGETING_VERSION, **({"avif_effort": AVIF_SEARCH_EFFORT} if "avif" in formats else {})}

    def avif_effort(self) -> int:
        return AVIF_EFFORT if self.fixed is not None else AVIF_SEARCH_EFFORT


@dataclasses.dataclass(frozen=True)
class OutputOptions:
    """Encoders and their quality. Every output is sRGB with no metadata at all."""

    formats: tuple[str, ...] = DEFAULT_FORMATS
    quality: QualityOptions = dataclasses.field(default_factory=lambda: parse_quality(DEFAULT_QUALITY))

    def __post_init__(self):
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise ValueError(f"formats must be among {', '.join(FORMATS)}, got {', '.join(self.formats) or 'none'}")
        if self.formats[0] != "webp":
            raise ValueError("webp must be the first format: the variants JSON is webp at its top level")


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
            OutputOptions(settings.variant_formats, settings.variant_quality),
        )

    def describe(self, decoder_versions: dict[str, str]) -> dict:
        """The canonical description hashed into the version (max_pixels and
        memory_budget are left out: they refuse files, they do not change the
        bytes of those they take)."""
        return {
            "variants": [list(v) for v in self.resize.variants],
            "formats": list(self.output.formats),
            "quality": self.output.quality.describe(self.resize.variants, self.output.formats),
            "max_animation_frames": self.input.max_animation_frames,
            "decoders": decoder_versions,
        }

    def version(self, decoder_versions: dict[str, str]) -> str:
        """A short hash (12 hex digits) of describe()."""
        canonical = json.dumps(self.describe(decoder_versions), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

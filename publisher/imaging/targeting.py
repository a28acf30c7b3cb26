"""Stage 4's quality: each variant in each format encoded at the quality whose SSIMULACRA2 score
(publisher/imaging/quality, against the variant before encoding, on white where it has alpha)
lands within TOLERANCE of its target, searched within the format's QUALITY_RANGES.

A probe (an encode, its decode and its score) is what costs, so the search makes few:
- a model of each image's curve q -> score: the format's typical curve (TYPICAL, the median over
  the quality corpus) moved up or down by the image's own offset, which each probe measures;
- the variants are searched smallest first, and each starts from the offset the smaller one
  measured (plus the typical difference between their sizes, SIZE_OFFSET): a search of the thumb
  (cheap) is reused for the display, as Etsy reuses one search across sizes; the smallest
  variant's AVIF starts from the offset its WebP measured (the larger ones, from the smaller AVIF);
- then each probe moves the quality by the model (one probe), or between two probes that bracket
  the target (the secant), until a probe lands within the tolerance or the range ends.
Everything is deterministic: the same pixels and recipe make the same probes and the same bytes.

An animation is searched on its first frame, which decides the quality of all of them (its score
is that of the first frame as published).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Callable

import pyvips

from .. import telemetry
from . import output, quality
from .options import QUALITY_RANGES, TOLERANCE, QualityOptions
from .resize import first_frame

#: Per format, the median SSIMULACRA2 score of the quality corpus' variants (thumbs and displays,
#: bench/quality_curves.py) at each encoder quality: the shape every image's curve is assumed to
#: have, moved up or down.
TYPICAL = {
    "webp": ((30, 57.8), (35, 60.0), (40, 62.2), (45, 64.3), (50, 65.6), (55, 67.3), (60, 68.8), (65, 70.0),
             (70, 71.5), (75, 72.9), (80, 76.0), (85, 79.6), (90, 82.8), (95, 87.1), (100, 89.8)),
    "avif": ((20, 38.9), (30, 51.7), (40, 64.0), (50, 73.1), (60, 78.8), (70, 83.0), (80, 86.9)),
}
#: How much lower a variant scores than one a quarter its area (twice smaller on each side), at
#: the same quality, in the corpus' median: a display's start from its thumb's offset.
SIZE_OFFSET = -0.8
#: Probes per variant and format at most; the search then takes the best it found.
MAX_PROBES = 5


@dataclasses.dataclass(frozen=True)
class Encoded:
    """One variant in one format: its bytes and how they were chosen."""

    data: bytes
    quality: int
    #: SSIMULACRA2 of the bytes against the variant (of an animation: of its first frame); None
    #: with a fixed quality, which measures nothing.
    score: float | None = None
    target: float | None = None
    #: Why the score is not within the tolerance: "highest", the range's highest quality still
    #: scores below the target (taken anyway); "lowest", its lowest already scores above; "between",
    #: no quality probed lands within it (the target falls between two neighbouring qualities, or
    #: the probes ran out): the lowest probed above the target is taken, else the highest probed;
    #: "too_small", a variant under 8
    #: pixels a side, which SSIMULACRA2 cannot score: the typical curve's quality for the target.
    #: None: the score is within the tolerance.
    bound: str | None = None


@dataclasses.dataclass(frozen=True)
class Found:
    """What a search settled on: a probe's encode, its score, and the end of the quality range
    taken when no probe reached the target (as in Encoded)."""

    data: bytes
    quality: int
    score: float
    target: float
    bound: str | None = None

    def encoded(self, data: bytes) -> Encoded:
        return Encoded(data, self.quality, self.score, self.target, self.bound)


@dataclasses.dataclass(frozen=True)
class Probe:
    quality: int
    score: float
    data: bytes


def encode_variants(variants: list[tuple[str, int, pyvips.Image]], formats: tuple[str, ...],
                    options: QualityOptions, animated: bool) -> dict[tuple[str, str], Encoded]:
    """Each (name, size, image) in each format (an animation only in the formats that animate),
    by (name, format)."""
    effort = options.avif_effort()
    encoded = {}
    offsets: dict[str, tuple[float, float]] = {}  # format -> (pixels, offset) of the last variant searched
    for name, size, image in sorted(variants, key=lambda v: _pixels(v[2])):
        for fmt in formats:
            if animated and not output.can_animate(fmt):
                continue
            target = options.target(name, size)
            if target is None:
                encoded[name, fmt] = Encoded(_encode(image, fmt, options.fixed_quality(fmt), effort),
                                             options.fixed_quality(fmt))
                continue
            if not quality.measurable(image.width, first_frame(image).height):
                low, high = QUALITY_RANGES[fmt]
                typical = _clamp(typical_quality(fmt, target), low, high)
                encoded[name, fmt] = Encoded(_encode(image, fmt, typical, effort), typical, None, target,
                                             "too_small")
                continue
            found = search(_prober(image, fmt, animated, effort), fmt, target,
                           expected_offset(offsets, fmt, _pixels(image)))
            offsets[fmt] = (_pixels(image), offset(fmt, found.quality, found.score))
            data = _encode(image, fmt, found.quality, effort) if animated else found.data
            encoded[name, fmt] = found.encoded(data)
    return encoded


def search(probe_at: Callable[[int], Probe], fmt: str, target: float, start_offset: float) -> Found:
    """The encode whose score is within TOLERANCE of target, found by probing qualities from where
    the image's expected offset from the typical curve (start_offset) puts the target."""
    low, high = QUALITY_RANGES[fmt]
    probes: list[Probe] = []
    quality_next: int | None = _clamp(typical_quality(fmt, target - start_offset), low, high)
    while quality_next is not None and len(probes) < MAX_PROBES:
        probe = probe_at(quality_next)
        probes.append(probe)
        if abs(probe.score - target) <= TOLERANCE:
            return Found(probe.data, probe.quality, probe.score, target)
        quality_next = _next_quality(fmt, probes, target, low, high)
    return _best(probes, target, low, high)


def _prober(image: pyvips.Image, fmt: str, animated: bool, avif_effort: int) -> Callable[[int], Probe]:
    """Encodes the image at a quality and scores the result. An animation's first frame is probed
    as a two-frame animation of itself: libwebp's animation encoder treats a frame otherwise than
    its still encoder (20 points lower on the corpus GIF), and this is the first frame it publishes."""
    reference = first_frame(image)
    probed = _first_frame_twice(reference) if animated else image

    def probe_at(quality_: int) -> Probe:
        data = _encode(probed, fmt, quality_, avif_effort)
        with telemetry.phase("score"):
            score = quality.score(reference, pyvips.Image.new_from_buffer(data, "").copy_memory())
        return Probe(quality_, score, data)

    return probe_at


def _first_frame_twice(frame: pyvips.Image) -> pyvips.Image:
    strip = frame.join(frame, "vertical").copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", frame.height)
    return strip


def _next_quality(fmt: str, probes: list[Probe], target: float, low: int, high: int) -> int | None:
    """Where the next probe goes; None when there is nowhere left to look."""
    under = max((p for p in probes if p.score < target), key=lambda p: p.quality, default=None)
    over = min((p for p in probes if p.score > target), key=lambda p: p.quality, default=None)
    if under is not None and over is not None:
        if over.quality - under.quality <= 1:
            return None  # the target falls between two neighbouring qualities
        # the secant between the two that bracket the target, strictly between them
        t = (target - under.score) / (over.score - under.score)
        guess = round(under.quality + t * (over.quality - under.quality))
        return min(max(guess, under.quality + 1), over.quality - 1)
    if over is None:
        assert under is not None  # every probe is under or over the target, or it would have landed
        if under.quality >= high:
            return None  # the range ends here
        # at least one step the right way, whatever the model says
        return max(_model_quality(fmt, under, target, low, high), under.quality + 1)
    if over.quality <= low:
        return None
    return min(_model_quality(fmt, over, target, low, high), over.quality - 1)


def _model_quality(fmt: str, probe: Probe, target: float, low: int, high: int) -> int:
    """Where the typical curve, moved through the probe, reaches the target."""
    return _clamp(typical_quality(fmt, target - offset(fmt, probe.quality, probe.score)), low, high)


def _best(probes: list[Probe], target: float, low: int, high: int) -> Found:
    """No probe within the tolerance: the lowest quality that scores above the target, else the
    highest probed (below it), and why (Encoded.bound)."""
    over = [p for p in probes if p.score > target]
    probe = min(over, key=lambda p: p.quality) if over else max(probes, key=lambda p: p.quality)
    bound = ("lowest" if over and probe.quality <= low else
             "highest" if not over and probe.quality >= high else "between")
    return Found(probe.data, probe.quality, probe.score, target, bound)


def offset(fmt: str, quality_: int, score: float) -> float:
    """How far an image's score at this quality is above the typical curve's."""
    return score - typical_score(fmt, quality_)


def typical_score(fmt: str, quality_: float) -> float:
    points = TYPICAL[fmt]
    i = min(max(bisect.bisect_left([q for q, _ in points], quality_), 1), len(points) - 1)
    (q0, s0), (q1, s1) = points[i - 1], points[i]
    return s0 + (quality_ - q0) * (s1 - s0) / (q1 - q0)


def typical_quality(fmt: str, score: float) -> float:
    """The quality at which the typical curve reaches `score` (extrapolated past its ends)."""
    points = TYPICAL[fmt]
    i = min(max(bisect.bisect_left([s for _, s in points], score), 1), len(points) - 1)
    (q0, s0), (q1, s1) = points[i - 1], points[i]
    return q0 + (score - s0) * (q1 - q0) / (s1 - s0)


def expected_offset(offsets: dict[str, tuple[float, float]], fmt: str, pixels: float) -> float:
    """The offset a variant of this size is expected to have: that of the last variant searched in
    this format, for its size; else that of this variant's WebP; else the typical image's."""
    if fmt in offsets:
        measured_pixels, measured = offsets[fmt]
        return measured + SIZE_OFFSET * math.log(pixels / measured_pixels, 4)
    return offsets.get("webp", (pixels, 0.0))[1]


def _encode(image: pyvips.Image, fmt: str, quality_: int, avif_effort: int) -> bytes:
    with telemetry.phase("encode"):
        return output.encode(image, fmt, quality_, avif_effort)


def _pixels(image: pyvips.Image) -> int:
    return image.width * first_frame(image).height


def _clamp(value: float, low: int, high: int) -> int:
    return min(max(round(value), low), high)

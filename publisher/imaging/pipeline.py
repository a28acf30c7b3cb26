"""The stages in order: input -> resize (+ colour, in the same libvips pass)
-> colour normalisation -> output (at each variant's quality target), plus the
front end's placeholder."""

from __future__ import annotations

import dataclasses
import functools
import hashlib

import pyvips

from .. import telemetry
from ..errors import PermanentError
from . import colour, memory, output, placeholder, resize, targeting
from .failures import lack_of_resources, machine_failure
from .input import Probe, frames_to_decode, open_source, truncation, vips_error
from .options import Recipe


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    format: str
    data: bytes
    width: int
    height: int  # of one frame
    frames: int = 1
    #: The encoder quality, and how it was chosen (targeting.Encoded).
    quality: int | None = None
    score: float | None = None
    target: float | None = None
    bound: str | None = None

    @property
    def content_type(self) -> str:
        return output.CONTENT_TYPES[self.format]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclasses.dataclass(frozen=True)
class Rendition:
    variants: list[Variant]
    #: data:image/webp;base64,... of about 16 px, for painting before the variant loads.
    placeholder: str
    #: #rrggbb
    dominant_color: str
    frames: int


@functools.lru_cache(maxsize=1)
def decoder_versions() -> dict[str, str]:
    """The libraries whose version changes the published bytes (part of the recipe)."""
    import pillow_heif

    return {"libvips": ".".join(str(pyvips.version(i)) for i in range(3)),
            "pillow_heif": pillow_heif.__version__}


def recipe_version(recipe: Recipe) -> str:
    return recipe.version(decoder_versions())


def render(path: str, probed: Probe, recipe: Recipe) -> Rendition:
    """Every variant in every format, largest first."""
    what = f"{probed.format} of {probed.width}x{probed.height} pixels"
    if probed.interlaced:
        what = f"{'progressive' if probed.format == 'jpeg' else 'interlaced'} {what}"
    budget = memory.process_budget(recipe.input.memory_budget)
    with budget.reserve(reservation(probed, recipe), what):
        return _render_within_budget(path, probed, recipe)


def reservation(probed: Probe, recipe: Recipe) -> int:
    """The bytes a render of this source reserves from its process's memory budget."""
    return memory.job_bytes(probed, frames_to_decode(probed, recipe.input), recipe.resize.largest_first[0][1],
                            searched=recipe.output.quality.fixed is None)


def _render_within_budget(path: str, probed: Probe, recipe: Recipe) -> Rendition:
    source = open_source(path, probed, recipe.input)
    try:
        images: list[tuple[str, int, pyvips.Image]] = []
        for name, size in recipe.resize.largest_first:
            if not images:
                with telemetry.phase("decode_resize"):
                    image = resize.first_variant(source, size, colour.conversion_options(probed.interpretation))
                    image = colour.to_srgb8(image).copy_memory()
            else:
                # In memory: the encodes, their scores, the placeholder and the dominant colour
                # read it again, and would otherwise redo its resize each time.
                image = resize.smaller_variant(images[0][2], (probed.width, probed.height), size).copy_memory()
            images.append((name, size, image))
        encoded = targeting.encode_variants(images, recipe.output.formats, recipe.output.quality, source.frames > 1)
        variants = [Variant(name, fmt, e.data, image.width, resize.frame_height(image), source.frames,
                            e.quality, e.score, e.target, e.bound)
                    for name, _, image in images for fmt in recipe.output.formats
                    if (e := encoded.get((name, fmt))) is not None]
        return Rendition(variants, placeholder.lqip_data_uri(image), placeholder.dominant_colour(image),
                         source.frames)
    except pyvips.Error as e:
        # "corrupt or truncated" is what operators (and the metrics' labels) look for
        detail = vips_error(e, path)
        if machine_failure(detail):
            raise lack_of_resources(probed.format, detail) from None
        cut = truncation(path, probed.format)
        raise PermanentError(f"corrupt or truncated {probed.format}: {f'{cut} ({detail})' if cut else detail}",
                             "corrupt_image") from None

"""The score: both images to linear light, the scales, the canvas of maps, one chain of operations
over it, the averages per map."""

from __future__ import annotations

import array
import functools
import math
import struct

import pyvips

from .layout import Tile, layout
from .ssimulacra2 import BIAS, C2, OFFSETS, OPSIN, RADIUS, SIGMA, X_GAIN, final, maps, scale_count

#: Alpha is composited onto white, the page a variant is shown on, before scoring.
BACKGROUND = (255, 255, 255)
#: The cube root's table: mixed cone responses lie in [BIAS, 1 + BIAS].
_CBRT_STEPS = 65536
_CBRT_SCALE = (_CBRT_STEPS - 1) / (1 + BIAS)


def score(reference: pyvips.Image, distorted: pyvips.Image) -> float:
    """SSIMULACRA2 of `distorted` against `reference`: both sRGB, 8-bit, the same size (grey and
    alpha are accepted: grey is taken as sRGB, alpha composited onto BACKGROUND)."""
    ref, dist = _srgb8(reference), _srgb8(distorted)
    if (ref.width, ref.height) != (dist.width, dist.height):
        raise ValueError(f"sizes differ: {ref.width}x{ref.height} and {dist.width}x{dist.height}")
    if not measurable(ref.width, ref.height):
        raise ValueError(f"{ref.width}x{ref.height} is too small to score: SSIMULACRA2 needs 8 pixels a side")
    scales = scale_count(ref.width, ref.height)
    wanted = maps(scales)
    levels = [ref.bandjoin(dist).maplut(_linear_table())]  # both images' linear RGB + BIAS: 6 bands
    while len(levels) <= wanted[-1][0]:
        # kept: each is read by its own tiles and by the next scale
        levels.append(levels[-1].shrink(2, 2, ceil=True).copy_memory())
    tiles, width, height, index = layout(ref.width, ref.height)
    canvas = _canvas(levels, tiles, width, height)
    averages = {}
    for tile, sums in zip(tiles, _sums(canvas, index, len(tiles))):
        # each map comes doubled (x + |x| is 2 max(x, 0)): its mean halves, its fourth powers by 16
        ssim, artifact, lost, ssim4, artifact4, lost4 = (total / tile.sample.pixels for total in sums)
        averages[tile.scale, tile.channel] = (ssim / 2, artifact / 2, lost / 2,
                                              (ssim4 / 16) ** 0.25, (artifact4 / 16) ** 0.25, (lost4 / 16) ** 0.25)
    return final(averages, scales)


def measurable(width: int, height: int) -> bool:
    """Whether images of this size can be scored (the reference's first scale needs 8 pixels a side)."""
    return bool(maps(scale_count(width, height)))


def _srgb8(image: pyvips.Image) -> pyvips.Image:
    if image.hasalpha():
        image = image.flatten(background=list(BACKGROUND)[:image.bands - 1])
    if image.bands == 1:
        image = image.bandjoin([image, image])
    if image.bands != 3 or image.format != "uchar":
        raise ValueError(f"expected 8-bit sRGB, got {image.bands} bands of {image.format}")
    return image


def _canvas(levels: list[pyvips.Image], tiles: list[Tile], width: int, height: int) -> pyvips.Image:
    """The tiles' positive XYB (a + b and a - b of the two images) in one 2-band canvas, zero between
    them."""
    sources = {}
    for tile in tiles:
        if id(tile.sample) not in sources:
            sources[id(tile.sample)] = tile.sample.cut(levels[tile.scale])
    # The finest scale on its own (it needs Y alone), the others side by side: one XYB for all of them.
    places = {}
    for group in ([t for t in tiles if t.scale == 0], [t for t in tiles if t.scale > 0]):
        if not group:
            continue
        channels = sorted({tile.channel for tile in group})
        keys = list(dict.fromkeys(id(tile.sample) for tile in group))
        joined, lefts = sources[keys[0]], [0]
        for key in keys[1:]:
            lefts.append(joined.width)
            joined = joined.join(sources[key], "horizontal", expand=True)
        image = _positive_xyb(joined, channels)
        parts = {c: image.extract_band(2 * i, n=2) if len(channels) > 1 else image for i, c in enumerate(channels)}
        for key, x in zip(keys, lefts):
            places[key] = (parts, x, image.width)
    canvas = pyvips.Image.black(width, height, bands=2)
    for tile in tiles:
        parts, left, full = places[id(tile.sample)]
        part = parts[tile.channel]
        canvas = canvas.insert(part.crop(left, 0, tile.width, tile.height) if full > tile.width else part,
                               tile.x, tile.y)
    return canvas


#: The cube roots each XYB channel needs (X and Y: the first two; B: all three), and its recipe
#: from them: X = 7 (r0 - r1), Y = (r0 + r1) / 2, B = r2 - (r0 + r1) / 2, each plus an offset.
_XYB = ((2, (X_GAIN / 2, -X_GAIN / 2, 0.0), OFFSETS[0]),
        (2, (0.5, 0.5, 0.0), OFFSETS[1] - BIAS ** (1 / 3)),
        (3, (-0.5, -0.5, 1.0), OFFSETS[2]))


def _positive_xyb(linear: pyvips.Image, channels: list[int]) -> pyvips.Image:
    """6 bands of linear RGB + BIAS (reference, distorted) -> per channel, a + b and a - b of their
    positive XYB (2 bands a channel)."""
    roots = max(_XYB[c][0] for c in channels)
    zero = [0.0] * 3
    cones = linear.recomb([[v * _CBRT_SCALE for v in OPSIN[i]] + zero for i in range(roots)]
                          + [zero + [v * _CBRT_SCALE for v in OPSIN[i]] for i in range(roots)])
    cubed = cones.cast("ushort").maplut(_cbrt_table())
    matrix, offsets = [], []
    for channel in channels:
        row = list(_XYB[channel][1][:roots])
        matrix += [row + row, row + [-v for v in row]]
        offsets += [2 * _XYB[channel][2], 0.0]
    return cubed.recomb(matrix).linear([1.0] * len(offsets), offsets)


def _sums(canvas: pyvips.Image, index: pyvips.Image, count: int) -> list[list[float]]:
    """Per tile, the sums of 2x [1 - SSIM, artifact, detail lost] and of their fourth powers."""
    across, down = _kernel()
    # mean S, mean D, mean S^2, mean D^2 (S = a + b, D = a - b); two passes cost less than convsep here
    blurred = canvas.bandjoin(canvas * canvas).conv(across, precision="float").conv(down, precision="float")
    means = blurred.extract_band(0, n=2)
    squared = means * means
    variances = blurred.extract_band(2, n=2) - squared
    # SSIM's numerator and denominator, doubled: var S - var D + 2 C2 and var S + var D + 2 C2
    fraction = variances.recomb([[1, -1], [1, 1]]).linear([1, 1], [2 * C2, 2 * C2])
    ssim = squared.extract_band(1).linear(-1, 1) * fraction.extract_band(0) / fraction.extract_band(1)
    # 1 + |a - mean a|, 1 + |b - mean b|
    deviations = (canvas - means).recomb([[0.5, 0.5], [0.5, -0.5]]).abs().linear([1, 1], [1, 1])
    edges = deviations.extract_band(1) / deviations.extract_band(0)
    signed = ssim.bandjoin(edges).linear([-1, 1], [1, -1])  # 1 - SSIM, and the edge ratio - 1
    doubled = signed.bandjoin(signed.abs()).recomb([[1, 0, 1, 0], [0, 1, 0, 1], [0, -1, 0, 1]])
    fourth = doubled * doubled
    histogram = doubled.bandjoin(fourth * fourth).hist_find_indexed(index).crop(1, 0, count, 1)
    values = struct.unpack(f"{count * 6}d", histogram.write_to_memory())
    return [list(values[i * 6:(i + 1) * 6]) for i in range(count)]


@functools.cache
def _kernel() -> tuple[pyvips.Image, pyvips.Image]:
    """The reference's Gaussian (scipy's, truncated at RADIUS), as a row and a column."""
    taps = [math.exp(-0.5 * (x / SIGMA) ** 2) for x in range(-RADIUS, RADIUS + 1)]
    row = pyvips.Image.new_from_list([[t / sum(taps) for t in taps]]).copy_memory()
    return row, row.rot90().copy_memory()


@functools.cache
def _linear_table() -> pyvips.Image:
    """sRGB 8-bit -> linear light, plus the opsin BIAS (each row of OPSIN sums to 1, so adding it
    here adds it to every cone response)."""
    values = [v / 255 for v in range(256)]
    linear = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in values]
    return _table([v + BIAS for v in linear])


@functools.cache
def _cbrt_table() -> pyvips.Image:
    return _table([((i + 0.5) / _CBRT_SCALE) ** (1 / 3) for i in range(_CBRT_STEPS)])


def _table(values: list[float]) -> pyvips.Image:
    return pyvips.Image.new_from_memory(array.array("f", values).tobytes(), len(values), 1, 1, "float")

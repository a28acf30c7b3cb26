"""Where each map goes in the canvas that one chain of libvips operations computes, and which of its
pixels are averaged: all of them, or samples of the maps that count only through 4-norms (led by
the worst places, which evenly spread samples find; a plain mean strays more)."""

from __future__ import annotations

import functools
import math

import pyvips

from .ssimulacra2 import NEGLIGIBLE, RADIUS, maps, scale_count, weight

#: In an image of more than SAMPLE_ABOVE pixels, a map whose plain mean has no weight, at a scale of
#: more than twice SAMPLED_PIXELS, is sampled by blocks of BLOCK pixels (width, height) spread over
#: it, about SAMPLED_PIXELS in all: for a 1600 px display, Y at scale 0, X and Y at 1, X at 2.
SAMPLE_ABOVE = 400_000
SAMPLED_PIXELS = 30_000
BLOCK = (48, 32)
#: In a smaller image (a 400 px thumb), the finest scale's Y map (it counts through 4-norms only) is
#: sampled by STRIPS whole-width strips of STRIP rows, evenly spaced, if it has twice their rows.
STRIPS, STRIP = 4, 32


def averaged_whole(scales: int, scale: int, channel: int) -> bool:
    """Whether a map's plain mean counts, so that it is never sampled."""
    return any(weight(scales, channel, scale, 0, k) > NEGLIGIBLE for k in range(3))


@functools.lru_cache(maxsize=64)
def layout(width: int, height: int) -> tuple[list, int, int, pyvips.Image]:
    """For images of this size: the maps' tiles placed in the canvas, its size, and the index image
    that numbers each tile's averaged pixels (margins and gaps are 0)."""
    scales = scale_count(width, height)
    sizes = [(width, height)]
    while len(sizes) < scales:
        sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
    samples: dict[tuple, Sample] = {}
    tiles = []
    for scale, channel in maps(scales):
        if averaged_whole(scales, scale, channel):
            how = "whole"
        elif width * height > SAMPLE_ABOVE:
            how = "blocks"
        else:
            how = "strips" if scale == 0 else "whole"
        sample = Sample(*sizes[scale], how)
        sample = samples.setdefault((scale, sample.block, tuple(sample.origins)), sample)
        tiles.append(Tile(scale, channel, sample))
    canvas_width, canvas_height = _pack(tiles)
    index = bytearray(canvas_width * canvas_height)
    for number, tile in enumerate(tiles, 1):
        for left, top, w, h in tile.sample.interiors():
            start = (tile.y + top) * canvas_width + tile.x + left
            run = bytes([number]) * w
            for row in range(start, start + h * canvas_width, canvas_width):
                index[row:row + w] = run
    return tiles, canvas_width, canvas_height, pyvips.Image.new_from_memory(
        bytes(index), canvas_width, canvas_height, 1, "uchar")


class Sample:
    """The pixels of a scale that are averaged: all of them, strips, or blocks evenly spread over it.
    Each is cut out with RADIUS real neighbour pixels around it, which the blur reads; rows beyond
    the image's top and bottom are mirrored, as the reference does, and its sides are met only by
    whole-width cuts, which get zero columns beside them in the canvas, as in the reference."""

    def __init__(self, width: int, height: int, how: str):
        block_width, block_height = BLOCK
        self.block, self.margin, self.across, self.origins = (width, height), 0, 1, [(0, 0)]
        if how == "strips" and height >= 2 * STRIPS * STRIP:
            self.block = (width, STRIP)
            self.origins = [(0, round((height - STRIP) * (j + 0.5) / STRIPS)) for j in range(STRIPS)]
        elif (how == "blocks" and width * height > 2 * SAMPLED_PIXELS and width >= block_width + 4 * RADIUS
                and height >= block_height):
            count = math.ceil(SAMPLED_PIXELS / (block_width * block_height))
            across = max(1, min(count, round(math.sqrt(count * width / height))))
            down = math.ceil(count / across)
            room = width - block_width - 2 * RADIUS
            self.block, self.margin, self.across = BLOCK, RADIUS, across
            # Each block in a row band and a column band of its own (the column bands visited in a
            # stride coprime with their number): a grid of blocks misses the few edges where a
            # product on white or a flat graphic has all its artifacts far more often.
            count = across * down
            stride = next(k for k in range(round(count * 0.618), 2 * count) if math.gcd(k, count) == 1)
            self.origins = [(RADIUS + round(room * ((k * stride) % count + 0.5) / count),
                             round((height - block_height) * (k + 0.5) / count)) for k in range(count)]
        self.cell = (self.block[0] + 2 * self.margin, self.block[1] + 2 * RADIUS)
        self.width = self.across * self.cell[0]
        self.height = math.ceil(len(self.origins) / self.across) * self.cell[1]
        self.pixels = len(self.origins) * self.block[0] * self.block[1]

    def cut(self, level: pyvips.Image) -> pyvips.Image:
        """The sampled pixels of `level` (6 bands of linear light) with their margins."""
        framed = level.embed(0, RADIUS, level.width, level.height + 2 * RADIUS, extend="mirror")
        if self.block == (level.width, level.height):
            return framed
        width, height = self.cell
        return pyvips.Image.arrayjoin([framed.crop(x - self.margin, y, width, height) for x, y in self.origins],
                                      across=self.across)

    def interiors(self):
        """The averaged rectangles (left, top, width, height) within the cut."""
        for i in range(len(self.origins)):
            yield (i % self.across * self.cell[0] + self.margin, i // self.across * self.cell[1] + RADIUS,
                   *self.block)


class Tile:
    """One (scale, channel) map: its sample's place in the canvas."""

    def __init__(self, scale: int, channel: int, sample: Sample):
        self.scale, self.channel, self.sample = scale, channel, sample
        self.width, self.height = sample.width, sample.height
        self.x = self.y = 0


def _pack(tiles: list[Tile]) -> tuple[int, int]:
    """Places the tiles, RADIUS zero columns apart and from the sides, tallest first, each as low and
    then as far left as it fits (a skyline), trying a few widths; returns the canvas size."""
    widest = max(tile.width for tile in tiles) + RADIUS
    area = sum((tile.width + RADIUS) * tile.height for tile in tiles)
    layouts = []
    for limit in sorted({widest, max(widest, int(area ** 0.5)), max(widest, int(1.5 * area ** 0.5))}):
        spots, height = _skyline(tiles, limit)
        layouts.append((limit * height, limit, height, spots))
    _, limit, height, spots = min(layouts, key=lambda layout: layout[0])
    for tile, (x, y) in zip(tiles, spots):
        tile.x, tile.y = x, y
    return limit + RADIUS, height


def _skyline(tiles: list[Tile], limit: int) -> tuple[list[tuple[int, int]], int]:
    steps = [(0, 0)]  # the skyline: (x where a step starts, its height), left to right
    spots = {}
    for i in sorted(range(len(tiles)), key=lambda i: -tiles[i].height):
        tile = tiles[i]
        span = tile.width + RADIUS
        fits = []
        for start, _ in steps:
            if start + span > limit:
                break
            fits.append((max(h for x, h in steps if x < start + span and _step_end(steps, x, limit) > start), start))
        y, start = min(fits)
        spots[i] = (start + RADIUS, y)
        end = start + span
        after = max(h for x, h in steps if x <= end and _step_end(steps, x, limit) > end) if end < limit else 0
        steps = ([s for s in steps if s[0] < start] + [(start, y + tile.height)]
                 + ([(end, after)] if end < limit and all(x != end for x, _ in steps) else [])
                 + [s for s in steps if s[0] >= end])
    return [spots[i] for i in range(len(tiles))], max(y + tiles[i].height for i, (x, y) in spots.items())


def _step_end(steps: list[tuple[int, int]], x: int, limit: int) -> int:
    later = [s for s, _ in steps if s > x]
    return min(later) if later else limit

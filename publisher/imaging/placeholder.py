"""What the front end paints before a variant loads: a tiny inline image
(LQIP, a WebP data URI of a few hundred bytes) and the dominant colour."""

from __future__ import annotations

import base64
import collections

import pyvips

from .resize import first_frame

#: Long edge of the inline placeholder, in pixels (the browser blurs it up).
LQIP_SIZE = 16
LQIP_QUALITY = 40
#: The dominant colour is the fullest of 16x16x16 colour bins, over this many pixels on the long edge.
DOMINANT_SAMPLE_SIZE = 64
DOMINANT_BIN = 16
#: Pixels more transparent than this are not counted towards the dominant colour.
OPAQUE_ENOUGH = 128


def lqip_data_uri(image: pyvips.Image) -> str:
    """`data:image/webp;base64,...` of the first frame fitted in 16x16."""
    tiny = first_frame(image).thumbnail_image(LQIP_SIZE, height=LQIP_SIZE, size="down")
    data = tiny.webpsave_buffer(Q=LQIP_QUALITY, keep="none", effort=6)
    return "data:image/webp;base64," + base64.b64encode(data).decode("ascii")


def dominant_colour(image: pyvips.Image) -> str:
    """`#rrggbb`: the mean colour of the fullest 16-level colour bin (as sharp's
    `dominant`), opaque pixels only; 8-bit sRGB in, 3 or 4 bands."""
    sample = first_frame(image).thumbnail_image(DOMINANT_SAMPLE_SIZE, height=DOMINANT_SAMPLE_SIZE)
    bands = sample.bands
    pixels = bytes(sample.write_to_memory())
    bins: dict[tuple, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
    for i in range(0, len(pixels), bands):
        if bands == 4 and pixels[i + 3] < OPAQUE_ENOUGH:
            continue
        r, g, b = pixels[i], pixels[i + 1], pixels[i + 2]
        acc = bins[(r // DOMINANT_BIN, g // DOMINANT_BIN, b // DOMINANT_BIN)]
        acc[0] += 1
        acc[1] += r
        acc[2] += g
        acc[3] += b
    if not bins:
        return "#000000"  # wholly transparent
    n, r, g, b = max(bins.values(), key=lambda acc: acc[0])
    return f"#{round(r / n):02x}{round(g / n):02x}{round(b / n):02x}"

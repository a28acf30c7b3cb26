"""One image through our variant step (publisher.imaging probe + render, as
actors/variant.py calls it), in a process of its own. Prints one JSON line.

    [VARIANT_QUALITY=q80] python -m bench.variant_ours PATH

With the default settings, but VARIANT_QUALITY when the environment sets it.
"""

from __future__ import annotations

import dataclasses
import os
import sys

from bench import measure


def main(path: str) -> None:
    from publisher import imaging
    from publisher.imaging import options
    from publisher.settings.job import Settings

    # A worker imports these once; publisher.imaging loads its stages (and libvips)
    # on first use, which must not be billed to the image.
    imaging.probe, imaging.render  # noqa: B018

    recipe = imaging.Recipe.from_settings(Settings)
    if os.environ.get("VARIANT_QUALITY"):
        quality = options.parse_quality(os.environ["VARIANT_QUALITY"])
        recipe = dataclasses.replace(recipe, output=dataclasses.replace(recipe.output, quality=quality))
    max_pixels = options.DEFAULT_MAX_SOURCE_PIXELS

    def work():
        probed = imaging.probe(path, max_pixels)
        rendition = imaging.render(path, probed, recipe)
        return [(v.name, v.width, v.height, len(v.data)) for v in rendition.variants]

    measure.report(work)


if __name__ == "__main__":
    main(sys.argv[1])

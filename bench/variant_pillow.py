"""One image the way a Python team writes it by default with Pillow: open,
ImageOps.exif_transpose, thumbnail per variant, save WebP at the same quality.
Prints one JSON line.

    python -m bench.variant_pillow PATH
"""

from __future__ import annotations

import io
import sys

from bench import measure


def main(path: str) -> None:
    from PIL import Image, ImageOps

    from publisher.settings.job import Settings

    variants, quality = Settings.variants, 80  # sharp's (bench/variant_sharp.js)

    def work():
        out = []
        with Image.open(path) as original:
            image = ImageOps.exif_transpose(original)
            for name, size in variants:
                variant = image.copy()
                variant.thumbnail((size, size))  # never upscales
                buffer = io.BytesIO()
                variant.save(buffer, "WEBP", quality=quality)
                out.append((name, variant.width, variant.height, buffer.tell()))
        return out

    measure.report(work)


if __name__ == "__main__":
    main(sys.argv[1])

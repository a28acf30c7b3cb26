"""The benchmark's input images: corpus photos, and larger ones made from them
reproducibly (upscaled, with seeded grain so the encoder cannot cheat on flat
areas), cached under bench/.cache/ (gitignored)."""

from __future__ import annotations

import math
import os
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
CORPUS = ROOT / "tests" / "fixtures" / "corpus"
CACHE = Path(os.environ.get("BENCH_CACHE", BENCH_DIR / ".cache"))

#: The real 12 MP camera photo (4032x3024) of the test corpus.
PHOTO_12MP = CORPUS / "large-photo-12mp.jpg"
#: A small photo (256x160) for latency runs, where the image step should cost nothing.
SMALL = CORPUS / "progressive.jpg"

#: Seed of the grain; change it and every generated input changes.
SEED = 20261129
#: JPEG quality of generated inputs (a camera's "fine" setting).
JPEG_QUALITY = 90
#: Standard deviation of the added grain, in 8-bit levels.
GRAIN_SIGMA = 6.0


def photo(megapixels: int) -> Path:
    """A JPEG of about `megapixels` MP made from the 12 MP corpus photo; generated once, then cached."""
    if megapixels == 12:
        return PHOTO_12MP
    path = CACHE / f"photo-{megapixels}mp-seed{SEED}-420.jpg"
    if not path.exists():
        _generate(path, megapixels)
    return path


def _generate(path: Path, megapixels: int) -> None:
    import pyvips

    source = pyvips.Image.new_from_file(str(PHOTO_12MP))
    scale = math.sqrt(megapixels * 1e6 / (source.width * source.height))
    big = source.resize(scale, kernel="lanczos3")
    grain = pyvips.Image.gaussnoise(big.width, big.height, sigma=GRAIN_SIGMA, mean=0, seed=SEED)
    out = (big + grain).cast("uchar").copy(interpretation="srgb")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.jpg")
    # 4:2:0 chroma like the camera's original (libvips would turn subsampling off at Q >= 90).
    out.jpegsave(str(tmp), Q=JPEG_QUALITY, keep="none", subsample_mode="on")
    os.replace(tmp, path)  # a run cut short never leaves half a file in the cache


if __name__ == "__main__":
    for mp in (24, 100):
        print(photo(mp))

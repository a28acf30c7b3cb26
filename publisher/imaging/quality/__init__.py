"""How close a variant looks to its source: SSIMULACRA2, computed with libvips.

SSIMULACRA2 (libjxl, tools/ssimulacra2.cc) scores a distorted image against its reference: 100 is
identical, about 90 visually lossless, 70 high quality, 50 medium, 30 low. Both images go to linear
RGB, then to XYB (opsin absorbance and a cube root); at 6 scales, each halving the previous in linear
RGB, it maps 1 - SSIM (Gaussian windows, sigma 1.5) and two edge differences (artifacts: edges the
source lacks; detail lost: edges the variant lacks), averages each map per channel as a 1-norm and a
4-norm, weighs the 108 averages and maps the sum through a polynomial.

The reference implementation (PyPI `ssimulacra2`, numpy; the tests' and the bench's yardstick)
needs 0.24 s per 400 px pair and about 4 s per 1600 px pair here. This package is the same arithmetic in
float32 (computed whole, within 0.05 of it), arranged for what costs time in libvips: each operation call
(a fraction of a millisecond in pyvips) and each pixel of each band.
- Only the maps with a weight above NEGLIGIBLE are made: at the finest scale, Y alone; at the
  coarsest, none (the weights left out sum to 0.02 of about 700).
- Every (scale, channel) map is a tile of one canvas (layout.py), so one chain of operations
  computes all of them, and hist_find_indexed sums each tile's pixels by an index image.
- The cube root is a table on a 16-bit index (pow costs six times as much here).
- Maps that count only through 4-norms are sampled: a thumb's finest Y map by 4 whole-width
  strips, a 1600 px display's three finest scales by blocks spread over them (layout.py).

    from publisher.imaging import quality
    quality.score(reference, distorted)  # pyvips images, sRGB 8-bit, the same size -> 0..100
"""

from .metric import BACKGROUND, measurable, score

__all__ = ["BACKGROUND", "measurable", "score"]

"""The JPEG decode shortcut of publisher.imaging (libjpeg shrink-on-load, as
sharp does; see BENCHMARKS.md): the right factor, and the same picture as the
full-size decode, EXIF orientation included. No services needed."""

import math

import pytest
import pyvips

from publisher import imaging
from publisher.errors import PermanentError
from publisher.imaging import resize
from tests.conftest import CORPUS

RECIPE = imaging.Recipe(resize=imaging.ResizeOptions((("thumb", 400), ("display", 1600))))


def probe_of(width, height):
    return imaging.Probe("jpeg", width, height, 1, "srgb")


@pytest.mark.parametrize("width,height,size,expected", [
    (4032, 3024, 1600, 2),    # 12 MP camera photo: decoded at 2016x1512
    (5657, 4243, 1600, 2),    # 24 MP: 2828x2121 (1414 would be too small)
    (11547, 8660, 1600, 4),   # 100 MP: 2886x2165
    (4032, 3024, 400, 8),     # the thumb alone: 504x378
    (3200, 2400, 1600, 2),    # exactly twice the target still covers it
    (3199, 2400, 1600, 1),    # one pixel less does not
    (1800, 1200, 1600, 1),    # smaller than twice the target: full size
    (256, 160, 1600, 1),      # never upscaled, never shrunk
    (3024, 4032, 1600, 2),    # portrait: same rule on the long edge
])
def test_shrink_is_the_largest_that_still_covers_the_variant(width, height, size, expected):
    assert resize.jpeg_shrink_on_load(probe_of(width, height), size) == expected


def psnr(a: pyvips.Image, b: pyvips.Image) -> float:
    mse = ((a.cast("float") - b.cast("float")) ** 2).avg()
    return 10 * math.log10(255**2 / mse) if mse else math.inf


@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_shrunk_decode_matches_the_full_size_decode(tmp_path, orientation):
    photo = pyvips.Image.new_from_file(str(CORPUS / "large-photo-12mp.jpg"))
    photo.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    path = str(tmp_path / f"o{orientation}.jpg")
    photo.jpegsave(path, Q=90, keep="exif")

    probed = imaging.probe(path, 150_000_000)
    variants = {v.name: v for v in imaging.render(path, probed, RECIPE).variants}

    upright = (1600, 1200) if orientation == 1 else (1200, 1600)
    assert (variants["display"].width, variants["display"].height) == upright
    # what libvips' thumbnail makes from the full-size decode, orientation applied
    reference = pyvips.Image.thumbnail(path, 1600, height=1600, size="down",
                                       input_profile="srgb", output_profile="srgb")
    display = pyvips.Image.new_from_buffer(variants["display"].data, "")
    assert (display.width, display.height) == (reference.width, reference.height)
    # the same picture (a rotation mistake would be far below 20 dB); WebP loss included
    assert psnr(display, reference) > 30


def test_truncated_large_jpeg_is_still_refused(tmp_path):
    data = (CORPUS / "large-photo-12mp.jpg").read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    probed = imaging.probe(str(path), 150_000_000)
    assert resize.jpeg_shrink_on_load(probed, 1600) == 2  # the shortcut is the path taken
    with pytest.raises(PermanentError, match="truncated"):
        imaging.render(str(path), probed, RECIPE)

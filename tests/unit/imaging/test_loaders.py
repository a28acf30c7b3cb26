"""Only the decoders of the formats we publish may run, and a file is decoded
only by the decoder of the format its first bytes claim."""

import subprocess
import sys

import pytest
import pyvips

from devstack.procs import ROOT
from publisher import imaging
from publisher.errors import PermanentError
from tests.conftest import CORPUS

DRAWING = (b'<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480">'
           b'<rect width="640" height="480" fill="#0a0"/></svg>')


def ftyp_comment_polyglot(brand: bytes) -> bytes:
    """An SVG whose first bytes read as an ISO-BMFF ftyp box naming `brand`: the
    box size is the bytes '<!--', so the brands sit inside an XML comment."""
    return b"<!--ftyp" + brand + b"0000" + brand + b"mif1-->" + DRAWING


@pytest.mark.parametrize("brand, claimed", [(b"avif", "avif"), (b"avis", "avif")])
def test_an_svg_behind_an_ftyp_box_is_refused_as_what_it_is(tmp_path, brand, claimed):
    path = tmp_path / "lot-12"
    path.write_bytes(ftyp_comment_polyglot(brand))
    assert imaging.sniff(str(path)) == claimed  # the first bytes do claim it
    with pytest.raises(PermanentError) as refused:
        imaging.probe(str(path), 10**8)
    message = str(refused.value)
    assert claimed in message and "SVG" in message, message


def test_a_png_whose_first_bytes_claim_tiff_is_not_decoded_as_png(tmp_path):
    # A TIFF header glued onto a PNG: libvips' own sniffing is what must not decide.
    path = tmp_path / "glued"
    path.write_bytes(b"II*\x00" + (CORPUS / "png-palette.png").read_bytes())
    with pytest.raises(PermanentError, match="tiff"):
        imaging.probe(str(path), 10**8)


LOADERS_WE_NEVER_RUN = {
    "csv": b"1,2,3\n4,5,6\n",
    "matrix": b"2 2\n1 2\n3 4\n",
    "svg": DRAWING,
    "vips": None,  # libvips' own format, written below
}


@pytest.mark.parametrize("kind", sorted(LOADERS_WE_NEVER_RUN))
def test_loaders_of_formats_we_do_not_publish_cannot_run_in_a_worker(tmp_path, kind):
    path = tmp_path / f"input.{kind}"
    if kind == "vips":
        pyvips.Image.black(8, 8).vipssave(str(path))
    else:
        path.write_bytes(LOADERS_WE_NEVER_RUN[kind])
    # In a fresh interpreter that has the probe, the first libvips call of every job.
    code = ("import sys, pyvips\nfrom publisher.imaging import probe\n"
            "try:\n    pyvips.Image.new_from_file(sys.argv[1]).avg()\nexcept pyvips.Error:\n    sys.exit(3)\n")
    result = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True, timeout=60)
    assert result.returncode == 3, result.stderr.decode()


@pytest.mark.parametrize("name", ["progressive.jpg", "png-palette.png", "animated.gif", "animated.webp",
                                  "tiff-lzw.tif", "avif.avif"])
def test_the_formats_we_publish_still_decode(name):
    probed = imaging.probe(str(CORPUS / name), 10**8)
    assert probed.width > 0 and pyvips.Image.new_from_file(str(CORPUS / name)).avg() >= 0

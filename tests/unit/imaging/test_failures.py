"""A failure of the machine (memory, threads, disk) while decoding is worth
another attempt; only a failure of the file is permanent."""

import subprocess
import sys

import pytest

from devstack.procs import ROOT
from publisher.imaging.failures import machine_failure

#: Renders argv[1] with only argv[2] MiB of address space left after start-up,
#: and prints the class of what it raised.
SHORT_OF_MEMORY = """
import resource, sys
import pyvips
from publisher.imaging import probe, render
from publisher.imaging.options import Recipe, ResizeOptions
path = sys.argv[1]
probed = probe(path, 10**9)
pyvips.Image.black(8, 8).avg()
size = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + int(sys.argv[2]) * 1024 * 1024, resource.RLIM_INFINITY))
try:
    render(path, probed, Recipe(resize=ResizeOptions((("display", 800),))))
    print("rendered")
except Exception as e:
    print(type(e).__name__, e)
"""


@pytest.fixture(scope="module")
def interlaced_png(tmp_path_factory):
    """Interlaced: libpng decodes it whole, so it needs its full size in memory."""
    import pyvips

    path = tmp_path_factory.mktemp("png") / "interlaced.png"
    pyvips.Image.black(3000, 2500, bands=3).copy(interpretation="srgb").pngsave(str(path), interlace=True)
    return path


@pytest.mark.parametrize("headroom_mib", [4, 12])
def test_running_out_of_memory_while_decoding_is_transient(interlaced_png, headroom_mib):
    result = subprocess.run([sys.executable, "-c", SHORT_OF_MEMORY, str(interlaced_png), str(headroom_mib)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    outcome = result.stdout.strip().splitlines()[-1]
    assert outcome.startswith("TransientError"), outcome
    assert "corrupt" not in outcome and "not the file's fault" in outcome, outcome


@pytest.mark.parametrize("detail", [
    "vips_tracked: out of memory -- size == 34MB",
    "glib: Error creating thread: Resource temporarily unavailable",
    "tiffload: unable to write temp file: No space left on device",
    "vips__file_open_write: unable to open file \"x.v\" for writing: Disk quota exceeded",
    "heif: Memory allocation error: Cannot allocate memory",
])
def test_errors_about_the_machine_are_told_apart(detail):
    assert machine_failure(detail)


@pytest.mark.parametrize("detail", [
    "VipsJpeg: Premature end of JPEG file",
    "pngload: libpng read error",
    "gifload: truncated GIF",
    "VipsForeignLoad: \"\" is not a known file format",
    "heif: Memory allocation error: Security limit exceeded: image size 40000x40000 exceeds the maximum",
])
def test_errors_about_the_file_stay_permanent(detail):
    assert not machine_failure(detail)

"""Memory per job: renders reserve their share of the process's budget before
decoding, so concurrent renders of sources that cannot stream take turns, and
a source that needs more than the whole budget is refused before decoding."""

import json
import subprocess
import sys
import threading

import pytest

from devstack.procs import ROOT
from publisher.errors import PermanentError, TransientError
from publisher.imaging import Recipe, probe
from publisher.imaging.memory import MIB, Budget
from publisher.imaging.pipeline import reservation
from tests.conftest import CORPUS

#: Renders the file argv[1] in argv[2] threads at once, with the worker's settings
#: (MEMORY_BUDGET_MB from the environment); prints how much the process's peak grew.
CONCURRENT_RENDERS = """
import json, sys, threading
from publisher.settings.job import load_settings
from publisher.imaging import Recipe, probe, render
from publisher.imaging.options import DEFAULT_MAX_SOURCE_PIXELS

def hwm():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) * 1024

settings = load_settings()
recipe = Recipe.from_settings(settings)
path, n = sys.argv[1], int(sys.argv[2])
probed = probe(path, DEFAULT_MAX_SOURCE_PIXELS)
before = hwm()
start = threading.Barrier(n)
errors = []

def one():
    start.wait()
    try:
        render(path, probed, recipe)
    except Exception as e:
        errors.append(repr(e))

threads = [threading.Thread(target=one) for _ in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"growth": hwm() - before, "errors": errors}))
"""

ENV = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres", "RAID_PUB_ENDPOINT": "https://raid.internal/pub",
    "RAID_PUBLISHER_SECRET": "s3cret-token", "B2_KEY_ID": "k", "B2_APP_KEY": "app-key", "B2_BUCKET": "b",
    "B2_ENDPOINT": "s3.example.com", "B2_REGION": "r", "CDN_BASE_URL": "https://cdn.example.com",
    "PATH": "/usr/bin:/bin",
}


@pytest.fixture(scope="module")
def interlaced_png(tmp_path_factory):
    """16-bit RGBA, interlaced: libpng must decode it whole (40 MB of pixels)."""
    import pyvips

    path = tmp_path_factory.mktemp("memory") / "interlaced.png"
    xyz = pyvips.Image.xyz(2500, 2000)
    image = (xyz[0] * 26).bandjoin([xyz[1] * 32, (xyz[0] + xyz[1]) * 14, 65535]).cast("ushort")
    image.copy(interpretation="rgb16").pngsave(str(path), interlace=True, compression=1)
    return path


def run_renders(path, threads: int, budget_mb: int) -> dict:
    result = subprocess.run([sys.executable, "-c", CONCURRENT_RENDERS, str(path), str(threads)], cwd=ROOT,
                            env=dict(ENV, MEMORY_BUDGET_MB=str(budget_mb)), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_concurrent_renders_stay_within_the_memory_budget(interlaced_png):
    needed = reservation(probe(str(interlaced_png), 10**9), Recipe())
    budget_mb = needed * 3 // 2 // MIB  # room for one render at a time, not two
    outcome = run_renders(interlaced_png, threads=3, budget_mb=budget_mb)
    assert outcome["errors"] == []
    assert outcome["growth"] <= budget_mb * MIB, (outcome["growth"] // MIB, budget_mb)


def test_a_source_needing_more_than_the_whole_budget_is_refused_before_decoding():
    heic = CORPUS / "iphone-grid-p3.heic"  # 12 MP, decoded whole
    outcome = run_renders(heic, threads=1, budget_mb=64)
    [error] = outcome["errors"]
    assert "PermanentError" in error and "heic of 3024x4032 pixels needs about" in error
    assert "MEMORY_BUDGET_MB=64" in error
    assert outcome["growth"] < 64 * MIB


def test_a_reservation_waits_for_the_memory_another_job_holds():
    budget = Budget(100)
    holding, release, second_in = threading.Event(), threading.Event(), threading.Event()

    def first():
        with budget.reserve(60, "first"):
            holding.set()
            release.wait(10)

    def second():
        with budget.reserve(60, "second"):
            second_in.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    holding.wait(10)
    threads[1].start()
    assert not second_in.wait(0.3)  # 60 + 60 > 100: it waits
    release.set()
    assert second_in.wait(10)
    for t in threads:
        t.join()
    assert budget.reserved == 0


def test_a_reservation_larger_than_the_budget_is_permanent_and_a_long_wait_transient():
    budget = Budget(100 * MIB)
    with pytest.raises(PermanentError, match="needs about 200 MB to decode, more than MEMORY_BUDGET_MB=100"):
        with budget.reserve(200 * MIB, "tiff of 1x1 pixels"):
            pass
    with budget.reserve(80 * MIB, "a"):
        with pytest.raises(TransientError, match="retried later"):
            with budget.reserve(40 * MIB, "b", wait_seconds=0.05):
                pass
    assert budget.reserved == 0


@pytest.mark.parametrize("name, whole", [
    ("large-photo-12mp.jpg", False), ("progressive.jpg", True), ("png-alpha.png", False),
    ("tiff-lzw.tif", False), ("animated.gif", True), ("animated.webp", True), ("hevc.heic", True),
    ("avif.avif", True),
])
def test_sources_that_cannot_stream_reserve_their_decoded_size(name, whole):
    probed = probe(str(CORPUS / name), 10**9)
    bigger = probed.__class__(**{**probed.__dict__, "width": probed.width * 8, "height": probed.height * 8})
    added_pixels = (bigger.width * bigger.height - probed.width * probed.height) * max(1, probed.pages)
    per_pixel = (reservation(bigger, Recipe()) - reservation(probed, Recipe())) / added_pixels
    if whole:
        assert per_pixel >= probed.bytes_per_pixel  # at least the decoded image
    else:
        assert per_pixel <= 1.5  # line buffers only

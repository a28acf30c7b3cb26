"""Hostile and broken input: each file fails cleanly in one attempt with a
last_error that says what is wrong with which file, and the worker stays up
with bounded memory. The origin's permanent answers are not retried."""

import os
from pathlib import Path

import pytest

from devstack.origin import Fault, Origin
from tests.faults import harness

#: A worker decoding any of the bombs would need gigabytes; refused from the header, it stays small.
MAX_WORKER_RSS_BYTES = 1024 * 1024 * 1024

SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="4000" height="4000"><rect/></svg>'
HTML = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
JSON = b'{"error": "not found", "key": "lot-17.jpg"}'


def peak_rss_of_group(pgid: int) -> int:
    """The largest peak resident size (VmHWM) among the processes of a process group."""
    peak = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            status = Path(f"/proc/{pid}/status").read_text()
        except (OSError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) * 1024)
    return peak


@pytest.fixture
def other_host(tmp_path):
    """A second HTTP server, reached by another host name, that must never be sent the token."""
    server = Origin(tmp_path, token="other-host-token").start()
    yield server
    server.stop()


def flat_image(width: int, height: int, suffix: str, flat: bool = False, **options) -> bytes:
    """A picture of few bytes and many pixels: gentle gradients, or one colour."""
    import pyvips

    if flat:
        image = (pyvips.Image.black(width, height, bands=3) + [90, 120, 150]).cast("uchar")
    else:
        xyz = pyvips.Image.xyz(width, height)
        image = (xyz[0] / 16).bandjoin([xyz[1] / 12, xyz[0] / 20]).cast("uchar")
    return image.copy(interpretation="srgb").write_to_buffer(f".{suffix}", **options)


def ftyp_svg_polyglot() -> bytes:
    """An SVG whose first bytes are an ftyp box claiming AVIF (its size field is '<!--')."""
    return b"<!--ftypavif0000avifmif1-->" + SVG.replace(b"<?xml version=\"1.0\"?>\n", b"")


def test_hostile_input_fails_cleanly_in_one_attempt(fault_stack, batch, origin, origin_root, other_host):
    stack = fault_stack(MAX_SOURCE_BYTES=1_000_000, ORIGIN_DOWNLOAD_TIMEOUT=3, MEMORY_BUDGET_MB=100)
    jobs = batch(stack, "hostile-input")
    cases = {}  # raid_key -> what its last_error must say (one text, or several)
    requests = {}  # raid_key -> how many requests the origin must see for it (one, unless redirected)

    def hostile(key, says, fault=None, max_retries=None, asks=1):
        if fault is not None:
            origin.faults[key] = fault
        jobs.add(key, expect="failed", max_retries=max_retries)
        jobs.faults += 1
        cases[key] = says
        requests[key] = asks

    def written(tag, data: bytes) -> str:
        key = jobs.source("progressive.jpg", tag)
        (origin_root / key).write_bytes(data)
        return key

    def corpus(name) -> bytes:
        return (origin_root / name).read_bytes()

    hostile(written("empty-", b""), "empty (0 bytes)")
    hostile(jobs.source("progressive.jpg", "html-"), "HTML page", Fault(body=HTML))
    hostile(jobs.source("progressive.jpg", "json-"), "JSON text", Fault(body=JSON))
    hostile(written("svg-", SVG), "SVG drawing")
    hostile(jobs.source("truncated.jpg"), "truncated jpeg")
    hostile(jobs.source("bomb-gif-65535x66601.gif"), "gif")
    hostile(jobs.source("bomb-avif-17000x17000.avif"), "17000x17000 pixels is over MAX_SOURCE_PIXELS")
    # Text chunks that inflate to megabytes around a 1x1 picture: refused from the chunk headers.
    hostile(jobs.source("bomb-png-ztxt.png"), "decompression bomb")
    hostile(jobs.source("large-photo-12mp.jpg", "declared-"), "over MAX_SOURCE_BYTES=1000000")
    hostile(jobs.source("large-photo-12mp.jpg", "unsized-"), "over MAX_SOURCE_BYTES=1000000; download cut off",
            Fault(unsized=True))
    # Not images, named as what they are.
    hostile(written("pdf-", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n"), "PDF document")
    hostile(written("zip-", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(40)), "ZIP archive")
    hostile(written("bmp-", b"BM" + bytes(60)), "BMP image")
    hostile(written("csv-", b"lot,estimate\n17,2000\n18,350\n"), "plain text")
    hostile(written("mp4-", b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(64)), "brand 'isom'")
    # Polyglots and files that are not what their first bytes claim.
    hostile(written("ftyp-svg-", ftyp_svg_polyglot()), "not a real avif file: its first bytes claim avif, but "
                                                          "it holds an SVG drawing")
    hostile(written("tiff-png-", b"II*\x00" + corpus("png-palette.png")), "not a real tiff file: its first bytes claim "
                                                                          "tiff, but it holds a PNG image")
    hostile(written("heic-junk-", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200)),
            "unreadable heic")
    # Small on disk, large decoded: an interlaced PNG must be decoded whole, and needs more than the budget.
    hostile(written("interlaced-", flat_image(4500, 3500, "png", interlace=True, flat=True)),
            ("interlaced png of 4500x3500 pixels needs about", "more than MEMORY_BUDGET_MB=100 (refused before"))
    png = corpus("png-alpha.png")
    hostile(written("cut-png-", png[: len(png) // 2]), "corrupt or truncated png")
    # The origin misbehaving.
    elsewhere = f"http://localhost:{other_host.port}/raid?key=x.jpg"
    hostile(jobs.source("progressive.jpg", "redirect-"), "another host", Fault(redirect_to=elsewhere))
    # urlsplit reads 127.0.0.1 as the host; urllib3 would connect to localhost:other.
    backslash = f"http://localhost:{other_host.port}\\@127.0.0.1:{origin.port}/raid?key=x.jpg"
    hostile(jobs.source("progressive.jpg", "backslash-"), "backslash, space or control character",
            Fault(redirect_to=backslash))
    hostile(jobs.source("progressive.jpg", "userinfo-"), "credentials in the Location",
            Fault(redirect_to=f"http://localhost:{other_host.port}@127.0.0.1:{origin.port}/raid?key=x.jpg"))
    hostile(jobs.source("progressive.jpg", "tab-"), "backslash, space or control character",
            Fault(redirect_to=f"{origin.endpoint}?key=x.jpg\t@localhost:{other_host.port}"))
    looping = jobs.source("progressive.jpg", "loop-")
    hostile(looping, "more than 3 times", Fault(redirect_to=f"{origin.endpoint}?key={looping}"), asks=4)
    hostile(jobs.source("progressive.jpg", "401-"), "401", Fault(status=401))
    hostile(jobs.source("progressive.jpg", "403-"), "403", Fault(status=403))
    hostile(f"{jobs.scenario}-no-such-key.jpg", "404")
    # gzip that inflates past the byte limit: cut off by the decoded size.
    hostile(jobs.source("progressive.jpg", "gzip-bomb-"), "over MAX_SOURCE_BYTES=1000000; download cut off",
            Fault(body=b"\xff\xd8\xff\xe0" + bytes(30_000_000), gzip=True))
    hostile(jobs.source("progressive.jpg", "brotli-"), "Content-Encoding 'br'", Fault(content_encoding="br"))
    # One byte every 0.3 s: each read is quick, the whole is not. A slow origin is
    # worth a retry in general; this job is given none, to be failed in one attempt.
    hostile(jobs.source("progressive.jpg", "drip-"), "took longer than 3 s", Fault(drip=0.3), max_retries=0)

    # Good files after the bad ones: the worker is still up and publishing.
    good = [jobs.add(jobs.source(name)) for name in ("progressive.jpg", "exif-orientation-1.jpg", "png-palette.png")]
    # A redirect on RAID's own host is followed.
    target = jobs.source("progressive.jpg")
    moved = jobs.source("progressive.jpg", "moved-")
    origin.faults[moved] = Fault(redirect_to=f"{origin.endpoint}?key={target}", times=1)
    good.append(jobs.add(moved))
    # A RAID (or a proxy) that compresses although asked not to.
    gzipped = jobs.source("exif-orientation-3.jpg", "gzipped-")
    origin.faults[gzipped] = Fault(gzip=True)
    good.append(jobs.add(gzipped))
    # Polyglots valid as two formats are published as the format their first bytes claim.
    good.append(jobs.add(written("jpeg-zip-", corpus("progressive.jpg") + b"PK\x03\x04\x14\x00" + bytes(200))))
    good.append(jobs.add(written("png-html-", corpus("png-palette.png") + b"<html><script>alert(1)</script></html>")))
    good.append(jobs.add(written("gif-js-", corpus("animated.gif") + b"\n/*<svg onload=alert(1)>*/")))
    # Decoded whole too, but within the budget: published (the renders take turns).
    good.append(jobs.add(written("progressive-", flat_image(3000, 2000, "jpg", interlace=True))))
    # A key named .jpg that holds a PNG: the bytes decide.
    good.append(jobs.add(written("named-jpg-", corpus("png-palette.png"))))

    workers = harness.start_workers(stack)
    stack.start_listener()
    jobs.wait()
    result = jobs.outcome()
    result.assert_clean()
    assert result.failed == len(cases) and result.completed == len(good)
    assert len(cases) + len(good) >= 30  # kinds of file and origin behaviour
    for row in result.rows:
        if row["status"] != "failed":
            continue
        says = cases[row["raid_key"]]
        assert row["retry_count"] == 0, row  # one attempt, no retry
        for part in says if isinstance(says, tuple) else (says,):
            assert part in row["last_error"], row
        assert row["raid_key"] in row["last_error"], row
        asked = sum(1 for r in origin.requests if r["key"] == row["raid_key"])
        assert asked == requests[row["raid_key"]], row
    # The other host was never contacted, so it never saw the token.
    assert other_host.requests == []
    # Every request asked for the file as it is stored.
    assert {r["accept_encoding"] for r in origin.requests} == {"identity"}
    print("\n".join(f"  {r['raid_key']}: {r['last_error']}" for r in result.rows if r["status"] == "failed"))
    assert workers.running()
    assert peak_rss_of_group(workers.pid) < MAX_WORKER_RSS_BYTES

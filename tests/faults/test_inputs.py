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


def test_hostile_input_fails_cleanly_in_one_attempt(fault_stack, batch, origin, origin_root, other_host):
    stack = fault_stack(MAX_SOURCE_BYTES=1_000_000)
    jobs = batch(stack, "hostile-input")
    cases = {}  # raid_key -> what its last_error must say

    def hostile(key, says, fault=None):
        if fault is not None:
            origin.faults[key] = fault
        jobs.add(key, expect="failed")
        jobs.faults += 1
        cases[key] = says

    empty = jobs.source("progressive.jpg", "empty-")
    (origin_root / empty).write_bytes(b"")
    hostile(empty, "empty (0 bytes)")
    hostile(jobs.source("progressive.jpg", "html-"), "HTML page", Fault(body=HTML))
    hostile(jobs.source("progressive.jpg", "json-"), "JSON text", Fault(body=JSON))
    svg = jobs.source("progressive.jpg", "svg-")
    (origin_root / svg).write_bytes(SVG)
    hostile(svg, "SVG drawing")
    hostile(jobs.source("truncated.jpg"), "truncated jpeg")
    hostile(jobs.source("bomb-gif-65535x66601.gif"), "gif")
    hostile(jobs.source("bomb-avif-17000x17000.avif"), "17000x17000 pixels is over MAX_SOURCE_PIXELS")
    # Text chunks that inflate to megabytes around a 1x1 picture: refused from the chunk headers.
    hostile(jobs.source("bomb-png-ztxt.png"), "decompression bomb")
    hostile(jobs.source("large-photo-12mp.jpg", "declared-"), "over MAX_SOURCE_BYTES=1000000")
    hostile(jobs.source("large-photo-12mp.jpg", "unsized-"), "over MAX_SOURCE_BYTES=1000000; download cut off",
            Fault(unsized=True))
    elsewhere = f"http://localhost:{other_host.port}/raid?key=x.jpg"
    hostile(jobs.source("progressive.jpg", "redirect-"), "redirected", Fault(redirect_to=elsewhere))
    hostile(jobs.source("progressive.jpg", "401-"), "401", Fault(status=401))
    hostile(jobs.source("progressive.jpg", "403-"), "403", Fault(status=403))
    hostile(f"{jobs.scenario}-no-such-key.jpg", "404")
    # Good files after the bad ones: the worker is still up and publishing.
    good = [jobs.add(jobs.source(name)) for name in ("progressive.jpg", "exif-orientation-1.jpg", "png-palette.png")]
    # A redirect on RAID's own host is followed.
    target = jobs.source("progressive.jpg")
    moved = jobs.source("progressive.jpg", "moved-")
    origin.faults[moved] = Fault(redirect_to=f"{origin.endpoint}?key={target}", times=1)
    good.append(jobs.add(moved))

    workers = harness.start_workers(stack)
    stack.start_listener()
    jobs.wait()
    result = jobs.outcome()
    result.assert_clean()
    assert result.failed == len(cases) and result.completed == len(good)
    for row in result.rows:
        if row["status"] != "failed":
            continue
        says = cases[row["raid_key"]]
        assert row["retry_count"] == 0, row  # one attempt, no retry
        assert says in row["last_error"] and row["raid_key"] in row["last_error"], row
        assert sum(1 for r in origin.requests if r["key"] == row["raid_key"]) == 1, row
    # The other host was never contacted, so it never saw the token.
    assert other_host.requests == []
    print("\n".join(f"  {r['raid_key']}: {r['last_error']}" for r in result.rows if r["status"] == "failed"))
    assert workers.running()
    assert peak_rss_of_group(workers.pid) < MAX_WORKER_RSS_BYTES

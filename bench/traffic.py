"""What a job costs on the wire: a counting proxy between the workers and the S3
server (devstack/s3proxy.py) and the RAID stand-in's own byte counts.

- `traffic`: a burst of 12 MP jobs on one worker host, then on two (network
  namespaces sharing only PostgreSQL and the bucket, as bench/scale_out.py's
  hosts); per job: S3 requests by method, bytes sent to and read from the bucket
  against the published bytes, RAID bytes against the source bytes.
- `wan`: the proxy adds a delay to each request and limits its bandwidth, as B2
  across a WAN would; one 12 MP photo at a time, from INSERT to completed, for
  this tree and for another commit (`--baseline-ref`, e.g. the release before),
  each run in a checkout of its own against its own schema.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from pathlib import Path

from devstack import procs
from devstack.s3proxy import S3Proxy

from . import stats
from .system import add_files, loadavg, seconds, wait_done

#: The WAN the proxy stands for: a round trip added to each request, and a link's bandwidth.
WAN_DELAY_S = 0.060
WAN_BANDWIDTH_BPS = 100e6


def _published_bytes(stack, job_ids) -> int:
    rows = stack.sql("SELECT f.variants FROM publish_jobs j JOIN auction_files f ON f.id = j.file_id "
                     "WHERE j.id = ANY(%s)", (job_ids,))
    return sum(entry["bytes"] for r in rows for v in r["variants"].values() for entry in v["formats"].values())


def _burst(stack, proxy, origin, raid_key: str, source_bytes: int, n: int) -> dict:
    proxy.traffic.reset()
    served_before = origin.bytes_served[raid_key]
    file_ids = add_files(stack, raid_key, n)
    rows = stack.sql("INSERT INTO publish_jobs (file_id) SELECT unnest(%s::uuid[]) RETURNING id", (file_ids,))
    job_ids = [r["id"] for r in rows]
    wait_done(stack, job_ids, 1800)
    t = proxy.traffic.snapshot()
    published = _published_bytes(stack, job_ids)
    return {"jobs": n, "requests_per_job": {m: c / n for m, c in sorted(t["requests"].items())},
            "requests_per_published_object": sum(t["requests"].values()) / (2 * n),
            "sent_over_published": t["bytes_sent"] / published,
            "read_over_published": t["bytes_received"] / published,
            "raid_over_source": (origin.bytes_served[raid_key] - served_before) / (source_bytes * n),
            "published_bytes_per_job": published / n,
            "bucket_keys_outside_media": len([k for k in stack.keys("") if not k.startswith(("media/", "bench/"))])}


def traffic(services, shape: dict, raid_key: str, source_bytes: int, n: int, two_hosts: bool = True,
            baseline_ref: str | None = None) -> dict:
    """Per job on one host and on two; with baseline_ref, on one host for that release too."""
    proxy = S3Proxy(("127.0.0.1", services.s3.port)).start()
    result = {}
    try:
        with services.system(B2_ENDPOINT=proxy.endpoint, **shape) as stack:
            result["one_host"] = _burst(stack, proxy, services.origin, raid_key, source_bytes, n)
        if two_hosts:
            result["two_hosts"] = _two_hosts(services, proxy, raid_key, source_bytes, n)
        if baseline_ref:
            with checkout(baseline_ref) as tree, services.system(B2_ENDPOINT=proxy.endpoint, root=tree,
                                                                 **shape) as stack:
                result["baseline_one_host"] = {"ref": baseline_ref, **_burst(stack, proxy, services.origin,
                                                                              raid_key, source_bytes, n)}
    finally:
        proxy.stop()
    return result


def _two_hosts(services, proxy, raid_key, source_bytes, n) -> dict:
    import os

    from devstack.netns import Hosts
    from tests.support.stack import Stack

    if os.geteuid() != 0:
        return {"skipped": "two hosts need root (network namespaces)"}
    from .system import PRODUCTION_ENV

    stack = Stack(services.pg, services.s3, services.origin, Path(tempfile.mkdtemp(dir=services.tmp)),
                  **{**PRODUCTION_ENV, "B2_ENDPOINT": proxy.endpoint})
    try:
        with Hosts(["a", "b"], stack.tmp / "hosts") as hosts:
            for host in hosts:
                host.start_workers(host.env(stack.env), 1, 2)
            stack.start_listener()
            return _burst(stack, proxy, services.origin, raid_key, source_bytes, n)
    finally:
        stack.stop()


@contextlib.contextmanager
def checkout(ref: str | None):
    """This tree (ref None), or `ref` checked out in a temporary worktree."""
    if ref is None:
        yield procs.ROOT
        return
    tree = Path(tempfile.mkdtemp(prefix="mp-baseline-"))
    subprocess.run(["git", "-C", str(procs.ROOT), "worktree", "add", "--detach", str(tree), ref],
                   check=True, capture_output=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(procs.ROOT), "worktree", "remove", "--force", str(tree)],
                       capture_output=True)


def wan(services, shape: dict, raid_key: str, runs: int, baseline_ref: str | None) -> dict:
    """One photo at a time through a WAN-like link to the bucket, INSERT to completed,
    for this tree and (given a ref) the baseline, alternating."""
    proxy = S3Proxy(("127.0.0.1", services.s3.port), delay=WAN_DELAY_S, bandwidth_bps=WAN_BANDWIDTH_BPS).start()
    result = {"delay_s": WAN_DELAY_S, "bandwidth_bps": WAN_BANDWIDTH_BPS, "runs": runs}
    try:
        trees = {"this": None, **({"baseline": baseline_ref} if baseline_ref else {})}
        for name, ref in trees.items():
            with checkout(ref) as tree:
                with services.system(B2_ENDPOINT=proxy.endpoint, root=tree, **shape) as stack:
                    totals, requests = [], []
                    for file_id in add_files(stack, raid_key, runs):
                        proxy.traffic.reset()
                        job_id = stack.request_publish(file_id)
                        row = wait_done(stack, [job_id], 600)[0]
                        totals.append(seconds(row["completed_at"] - row["created_at"]))
                        requests.append(sum(proxy.traffic.snapshot()["requests"].values()))
                    result[name] = {"ref": ref or "HEAD", "median_s": stats.median(totals), "runs_s": totals,
                                    "s3_requests_per_job": stats.median(requests), "loadavg": loadavg()}
    finally:
        proxy.stop()
    return result

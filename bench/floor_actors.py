"""Actors named like the real steps (fetch, variant, upload) that do what any
implementation of the contract must do besides the image work, and nothing else:

- fetch downloads the original from RAID with the production client (all its bytes);
- variant makes no image: it reads the bytes the real step makes for this photo
  (rendered beforehand by the harness into BENCH_FLOOR_VARIANTS) and puts them in
  the bucket under their final keys: no staging hop, no checks;
- upload records the published variants and completes the job.

The job lifecycle (claims, step transactions, three broker messages) is the real
one. A burst on these workers measures the floor under the system's overhead on
this machine; `bench/floor.py` sets it against the image work.

    BENCH_FLOOR_VARIANTS=DIR dramatiq bench.floor_actors --processes 2 --threads 3

Benchmark-only; production code has no hook for it.
"""

import io
import os
from pathlib import Path

import dramatiq

from bench.step_results import Handed
from publisher.app.broker import setup_broker
from publisher.app.runtime import process_runtime, settings_or_exit
from publisher.clients.storage import IMMUTABLE
from publisher.jobs.handoff import ImagingFacts, Published, Source
from publisher.jobs.locality import QUEUE
from publisher.jobs.store import steps
from publisher.settings import fixed

broker = setup_broker(settings_or_exit(), process_runtime)
#: name -> bytes, read once at start: a real variant step has them in memory, not on disk.
VARIANTS = {path.name: path.read_bytes()
            for path in sorted(Path(os.environ.get("BENCH_FLOOR_VARIANTS", ".")).glob("*.webp"))}


# Same queue and priorities as actors/.
@dramatiq.actor(queue_name=QUEUE, priority=20)
def fetch(job_id: int, token: str) -> Handed:
    rt = process_runtime()
    job = rt.load_job(job_id, token)
    with rt.scratch.target(job_id, token, "source") as path:
        size = rt.origin.download(job.raid_key, path)
    rt.scratch.remove(job_id, token)
    return Handed({"source": {"bytes": size, "width": 0, "height": 0}})


@dramatiq.actor(queue_name=QUEUE, priority=10)
def variant(job_id: int, token: str) -> Handed:
    rt = process_runtime()
    job = rt.load_job(job_id, token)
    published = {}
    for filename, data in VARIANTS.items():
        # In the file's folder, as publisher_finalize requires of every key it publishes.
        key = f"{fixed.OBJECT_PREFIX}{job.file_id}/floor-{filename}"
        rt.storage.put_stream(key, io.BytesIO(data), len(data), "image/webp", IMMUTABLE)
        published[filename.removesuffix(".webp")] = {"key": key, "url": rt.storage.url(key)}
    return Handed({"variants": published})


@dramatiq.actor(queue_name=QUEUE, priority=0)
def upload(job_id: int, token: str) -> Published:
    rt = process_runtime()
    job = rt.load_job(job_id, token)
    # Tracked as the real upload tracks each key it PUTs (finalize publishes only keys its
    # upload tracked); the lifecycle finalizes the job with what this returns, as it does the real upload's.
    for variant in job.artifacts["variants"].values():
        steps.track_object(rt.db, job_id, token, variant["key"])
    return Published(dict(job.artifacts["variants"]), Source("source", 0, "none", 0, 0),
                     ImagingFacts("bench-floor", None, None))

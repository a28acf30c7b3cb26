"""The floor under the throughput target on this machine.

The target compares the whole system with the image work alone (the in-process
bound) on the same 2 cores, where PostgreSQL, the S3 server and the origin run
too. Whatever else a job costs is taken from the image work, so the highest
system/bound ratio any implementation can reach here is

    image CPU per job / (image CPU per job + floor CPU per job)

where the floor is what a job must cost besides the image work: the job's
lifecycle (trigger, listener, three broker messages, the step transactions),
downloading the original from RAID, putting the variants in the bucket and
recording them. `bench/floor_actors.py` does exactly that and nothing more (no
staging, no checks, no image); a burst on it is measured like the real one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .cpu import system_total
from .throughput import burst


def prerender(photo: Path, out_dir: Path) -> dict[str, int]:
    """The variants our variant step makes of `photo`, written as NAME.webp; their sizes."""
    from publisher import imaging
    from publisher.imaging import options
    from publisher.settings.job import Settings

    probed = imaging.probe(str(photo), options.DEFAULT_MAX_SOURCE_PIXELS)
    sizes = {}
    for v in imaging.render(str(photo), probed, imaging.Recipe.from_settings(Settings)).variants:
        (out_dir / f"{v.name}.webp").write_bytes(v.data)
        sizes[v.name] = len(v.data)
    return sizes


def floor(services, shape: dict, photo: Path, raid_key: str, n: int, image_cpu_s_per_job: float) -> dict:
    """A burst of n jobs of `photo` on workers that do only what the contract requires,
    and the ceiling it puts on system/bound, given the image work's CPU per job."""
    with tempfile.TemporaryDirectory(dir=services.tmp) as variants:
        sizes = prerender(photo, Path(variants))
        with services.system(workers_module="bench.floor_actors", BENCH_FLOOR_VARIANTS=variants, **shape) as stack:
            result = burst(stack, services.s3.process.pid, raid_key, n)
    floor_cpu = system_total(result["cpu_s_per_job"])
    return {**result, "variant_bytes": sizes, "image_cpu_s_per_job": image_cpu_s_per_job,
            "floor_cpu_s_per_job": floor_cpu,
            "ceiling_system_over_bound": image_cpu_s_per_job / (image_cpu_s_per_job + floor_cpu)}

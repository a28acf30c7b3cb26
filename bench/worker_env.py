"""Whole-system bursts of the 12 MP photo with the workers' environment changed,
alternating with the unchanged one, on one set of services:

    python -m bench.worker_env JOBS 'MALLOC_ARENA_MAX=16 VIPS_CONCURRENCY=2' [ROUNDS]

Prints jobs/min and the workers' CPU seconds per job of each burst. Used for
step 5 of BENCHMARKS.md (libraries' defaults against the worker's).
"""

from __future__ import annotations

import sys

from . import inputs
from .run import KEY_12MP
from .system import Services
from .throughput import burst


def main(jobs: int, changed: str, rounds: int = 2) -> None:
    configs = {"as shipped": {}, changed: dict(pair.split("=", 1) for pair in changed.split())}
    services = Services({KEY_12MP: inputs.photo(12)})
    try:
        for _ in range(rounds):
            for name, env in configs.items():
                with services.system(**env) as stack:
                    r = burst(stack, services.s3.process.pid, KEY_12MP, jobs)
                print(f"{name:40} {r['jobs_per_min']:6.1f} jobs/min, workers {r['cpu_s_per_job']['workers']:.3f} "
                      f"CPU s/job, loadavg {r['loadavg_before']} -> {r['loadavg_after']}", flush=True)
    finally:
        services.close()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 2)

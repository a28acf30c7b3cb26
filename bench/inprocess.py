"""The in-process bound: the same images through the variant step alone
(publisher.imaging probe + render, nothing else), with the workers' shape:
`processes` processes of `threads` threads taking images from one counter.

    python -m bench.inprocess PATH COUNT PROCESSES THREADS   (prints JSON)
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import threading
import time


def _process(path: str, counter, threads: int) -> None:
    from publisher import imaging
    from publisher.imaging import options
    from publisher.settings.job import Settings

    def take() -> bool:
        with counter.get_lock():
            if counter.value <= 0:
                return False
            counter.value -= 1
            return True

    recipe = imaging.Recipe.from_settings(Settings)

    def run():
        while take():
            probed = imaging.probe(path, options.DEFAULT_MAX_SOURCE_PIXELS)
            imaging.render(path, probed, recipe)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def bound(path: str, count: int, processes: int, threads: int) -> dict:
    # spawn, as dramatiq starts its worker processes
    ctx = multiprocessing.get_context("spawn")
    counter = ctx.Value("i", count)
    procs = [ctx.Process(target=_process, args=(path, counter, threads)) for _ in range(processes)]
    started = time.monotonic()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"in-process bound worker exited with {p.exitcode}")
    elapsed = time.monotonic() - started
    return {"images": count, "seconds": elapsed, "jobs_per_min": count / elapsed * 60}


if __name__ == "__main__":
    path, count, processes, threads = sys.argv[1], *map(int, sys.argv[2:5])
    print(json.dumps(bound(path, count, processes, threads)))

"""Variant cost per image: ours (pyvips), sharp (as the replaced Node system
called it) and Pillow (the natural way), each run in a fresh process, several
times, in turn (so a change in machine load hits all three alike).

Per run: CPU seconds of the image work (all threads; measured inside the
process, after the imports), CPU seconds of the whole process (start-up
included, from os.wait4), and the process's peak RSS (its own VmHWM, see bench/measure.py).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from . import stats
from .measure import run_child
from .system import loadavg

BENCH_DIR = Path(__file__).resolve().parent

IMPLEMENTATIONS = {
    "ours": lambda path: [sys.executable, "-m", "bench.variant_ours", str(path)],
    "pillow": lambda path: [sys.executable, "-m", "bench.variant_pillow", str(path)],
    "sharp": lambda path: [shutil.which("node") or "node", str(BENCH_DIR / "variant_sharp.js"), str(path)],
}
FIGURES = ("work_cpu_s", "process_cpu_s", "peak_rss_mb", "rss_before_work_mb")


def sharp_available() -> bool:
    return bool(shutil.which("node")) and (BENCH_DIR / "node_modules" / "sharp").is_dir()


def compare(images: dict[str, Path], runs: int, implementations=("ours", "sharp", "pillow")) -> dict:
    results = {}
    for label, path in images.items():
        load = loadavg()
        samples = {impl: [] for impl in implementations}
        for _ in range(runs):
            for impl in implementations:
                samples[impl].append(run_child(IMPLEMENTATIONS[impl](path), cwd=str(BENCH_DIR.parent)))
        per_impl = {}
        for impl, runs_ in samples.items():
            per_impl[impl] = {f: stats.median([r[f] for r in runs_]) for f in FIGURES}
            per_impl[impl]["rss_growth_mb"] = stats.median([r["peak_rss_mb"] - r["rss_before_work_mb"] for r in runs_])
            per_impl[impl]["outputs"] = runs_[0]["outputs"]
            per_impl[impl]["runs"] = [{f: r[f] for f in FIGURES} for r in runs_]
        ratios = {}
        for other in implementations:
            if other == "ours" or "ours" not in per_impl:
                continue
            ratios[other] = {f: per_impl["ours"][f] / per_impl[other][f]
                             for f in ("work_cpu_s", "process_cpu_s", "peak_rss_mb", "rss_growth_mb")}
        results[label] = {"path": str(path), "runs": runs, "by_implementation": per_impl,
                          "ours_over": ratios, "loadavg": load}
    return results

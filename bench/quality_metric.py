"""The perceptual metric against the reference SSIMULACRA2 over the quality corpus (issue 25).

Every corpus image (bench/quality_corpus.py, `make quality-corpus`) as the thumb and display
variants (400 and 1600 px, never upscaled), each encoded with the pipeline's WebP encoder at
QUALITIES: the agreement of publisher.imaging.quality with the reference (PyPI `ssimulacra2`) --
Spearman's rank correlation, the share of pairs within 2 points -- and the CPU of each per pair.

    .venv/bin/python -m bench.quality_metric [--limit N] [--out bench/results/quality-metric.json]

The reference takes seconds per display pair, so its scores are kept in
.run/quality-corpus/reference-scores.json, by the pixels of the pair: a second run only times the
fast metric.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import pyvips
from scipy.stats import spearmanr

from bench import quality_corpus
from publisher.imaging import colour, engine, output, quality  # noqa: F401  (engine: the worker's libvips settings)

VARIANTS = (("thumb", 400), ("display", 1600))
#: The timing pair: the test corpus's 12 MP camera photo as each variant, WebP at 80.
TIMING_PHOTO = quality_corpus.ROOT / "tests" / "fixtures" / "corpus" / "large-photo-12mp.jpg"
TIMING_RUNS = 15
QUALITIES = (40, 55, 70, 80, 90, 95)
CACHE = quality_corpus.CORPUS / "reference-scores.json"


def variant(path: Path, size: int) -> pyvips.Image:
    """As the pipeline's first variant: fitted inside size x size, never upscaled, 8-bit sRGB (the
    corpus is sRGB already, without profiles)."""
    return colour.to_srgb8(pyvips.Image.thumbnail(str(path), size, height=size, size="down")).copy_memory()


def reference_score(reference: pyvips.Image, distorted: pyvips.Image, cache: dict) -> tuple[float, float]:
    """(score, CPU seconds) of the reference implementation, from the cache when it has the pair."""
    key = hashlib.sha256(bytes(reference.write_to_memory()) + bytes(distorted.write_to_memory())).hexdigest()
    if key not in cache:
        from ssimulacra2 import compute_ssimulacra2

        with tempfile.TemporaryDirectory() as folder:
            paths = [os.path.join(folder, f"{name}.png") for name in ("reference", "distorted")]
            reference.pngsave(paths[0], compression=1)
            distorted.pngsave(paths[1], compression=1)
            start = time.process_time()
            value = compute_ssimulacra2(*paths)
            cache[key] = {"score": value, "cpu_s": time.process_time() - start}
    return cache[key]["score"], cache[key]["cpu_s"]


def fast_score(reference: pyvips.Image, distorted: pyvips.Image) -> tuple[float, float]:
    start = time.process_time()
    value = quality.score(reference, distorted)
    return value, time.process_time() - start


def run(limit: int | None) -> dict:
    rows = quality_corpus.load()[:limit]
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    pairs = []
    for n, row in enumerate(rows, 1):
        for name, size in VARIANTS:
            reference = variant(row["path"], size)
            quality.score(reference, reference)  # the first call of a size lays out its canvas (cached)
            for webp_quality in QUALITIES:
                data = output.encode(reference, "webp", webp_quality)
                distorted = pyvips.Image.new_from_buffer(data, "").copy_memory()
                expected, reference_cpu = reference_score(reference, distorted, cache)
                fast, fast_cpu = fast_score(reference, distorted)
                pairs.append({"file": row["file"], "kind": row["kind"], "variant": name, "quality": webp_quality,
                              "width": reference.width, "height": reference.height, "bytes": len(data),
                              "reference": expected, "fast": fast, "reference_cpu_s": reference_cpu,
                              "fast_cpu_s": fast_cpu})
        CACHE.write_text(json.dumps(cache))
        print(f"{n}/{len(rows)} {row['file']}", flush=True)
    return {"date": datetime.datetime.now().isoformat(timespec="minutes"), "qualities": QUALITIES,
            "load_average": os.getloadavg(), "summary": {name: summary([p for p in pairs if p["variant"] == name], size)
                                                         for name, size in VARIANTS},
            "pairs": pairs}


def timing() -> dict:
    """CPU ms of one score, min and median of TIMING_RUNS, per variant of the 12 MP photo."""
    result = {}
    for name, size in VARIANTS:
        reference = variant(TIMING_PHOTO, size)
        data = output.encode(reference, "webp", 80)
        distorted = pyvips.Image.new_from_buffer(data, "").copy_memory()
        quality.score(reference, distorted)
        runs = sorted(fast_score(reference, distorted)[1] for _ in range(TIMING_RUNS))
        result[name] = {"size": f"{reference.width}x{reference.height}", "cpu_ms_min": 1000 * runs[0],
                        "cpu_ms_median": 1000 * statistics.median(runs)}
    return result


def summary(pairs: list[dict], size: int) -> dict:
    fast = [p["fast"] for p in pairs]
    reference = [p["reference"] for p in pairs]
    apart = sorted(abs(a - b) for a, b in zip(fast, reference))
    cpu = sorted(p["fast_cpu_s"] for p in pairs)
    return {"pairs": len(pairs), "spearman": spearmanr(fast, reference).statistic,
            "within_2": sum(d <= 2 for d in apart) / len(apart),
            "mean_difference": statistics.mean(a - b for a, b in zip(fast, reference)),
            "p90_apart": apart[int(0.9 * (len(apart) - 1))], "max_apart": apart[-1],
            "fast_cpu_ms_median": 1000 * statistics.median(cpu),
            "fast_cpu_ms_p90": 1000 * cpu[int(0.9 * (len(cpu) - 1))],
            "reference_cpu_s_median": statistics.median(p["reference_cpu_s"] for p in pairs),
            # the CPU of full-size variants alone (smaller sources give smaller variants)
            "full_size_pairs": len(full := [p for p in pairs if max(p["width"], p["height"]) == size]),
            "fast_cpu_ms_median_full_size": 1000 * statistics.median(p["fast_cpu_s"] for p in full) if full else None,
            "reference_cpu_s_median_full_size": (statistics.median(p["reference_cpu_s"] for p in full)
                                                 if full else None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, help="only the first N corpus images")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "quality-metric.json")
    parser.add_argument("--timing-only", action="store_true", help="only the CPU of one pair per variant")
    args = parser.parse_args()
    if args.timing_only:
        print(json.dumps({"timing": timing(), "load_average": os.getloadavg()}))
        return
    result = run(args.limit)
    result["timing"] = timing()
    args.out.write_text(json.dumps(result, indent=1))
    for name, s in result["summary"].items():
        full = (f"{s['fast_cpu_ms_median_full_size']:.0f} ms, reference {s['reference_cpu_s_median_full_size']:.1f} s"
                if s["full_size_pairs"] else "none")
        print(f"{name}: {s['pairs']} pairs, Spearman {s['spearman']:.4f}, within 2 points {s['within_2']:.1%}, "
              f"mean fast - reference {s['mean_difference']:+.2f}, p90 apart {s['p90_apart']:.2f}, "
              f"max {s['max_apart']:.2f}; fast CPU per pair median {s['fast_cpu_ms_median']:.0f} ms "
              f"(p90 {s['fast_cpu_ms_p90']:.0f}), reference {s['reference_cpu_s_median']:.1f} s; "
              f"at full size ({s['full_size_pairs']} pairs): {full}")
    for name, t in result["timing"].items():
        print(f"{name} {t['size']} (12 MP photo, WebP 80): {t['cpu_ms_min']:.0f} ms min, "
              f"{t['cpu_ms_median']:.0f} ms median of {TIMING_RUNS}")
    print(f"load average at the end {result['load_average']}; pairs in {args.out}")


if __name__ == "__main__":
    main()

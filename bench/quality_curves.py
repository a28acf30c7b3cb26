"""Each quality-corpus image's curve of quality -> (score, bytes), per variant and format: what the
targeting's constants (publisher/imaging/targeting.py: the default targets, the typical curves,
SIZE_OFFSET) were chosen from (issue 25). Not the bench's `quality` part: a tool to pick the defaults.

    .venv/bin/python -m bench.quality_curves [--limit N] [--avif] [--out .run/quality-curves.json]
    .venv/bin/python -m bench.quality_curves --summarise | --fit | --carry   # on the curves at --out

The variants are made as the pipeline makes them (the display from the source, the thumb from the
display), scored with publisher.imaging.quality.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import pyvips

from bench import quality_corpus
from bench.stats import percentile
from publisher.imaging import colour, engine, output, quality, resize  # noqa: F401  (engine: the worker's libvips)

VARIANTS = (("display", 1600), ("thumb", 400))
QUALITIES = {"webp": tuple(range(30, 101, 5)), "avif": tuple(range(20, 81, 10))}


def variants(path: Path) -> dict[str, pyvips.Image]:
    display = colour.to_srgb8(pyvips.Image.thumbnail(str(path), 1600, height=1600, size="down")).copy_memory()
    original = pyvips.Image.new_from_file(str(path))
    thumb = resize.smaller_variant(display, (original.width, original.height), 400).copy_memory()
    return {"display": display, "thumb": thumb}


def curve(image: pyvips.Image, fmt: str) -> list[dict]:
    points = []
    for q in QUALITIES[fmt]:
        data = output.encode(image, fmt, q)
        decoded = pyvips.Image.new_from_buffer(data, "").copy_memory()
        points.append({"q": q, "score": round(quality.score(image, decoded), 3), "bytes": len(data)})
    return points


def run(limit: int | None, formats: tuple[str, ...], out: Path) -> None:
    results = json.loads(out.read_text()) if out.exists() else {}
    for n, row in enumerate(quality_corpus.load()[:limit], 1):
        images = variants(row["path"])
        entry = results.setdefault(row["file"], {"kind": row["kind"]})
        for name, image in images.items():
            entry.setdefault(name, {"width": image.width, "height": image.height})
            for fmt in formats:
                if fmt not in entry[name]:
                    entry[name][fmt] = curve(image, fmt)
        out.write_text(json.dumps(results))
        print(f"{n} {row['file']}", flush=True)


def at_score(points: list[dict], target: float) -> tuple[float, float]:
    """(quality, bytes) where the curve crosses `target`, interpolated; the ends where it does not."""
    for a, b in zip(points, points[1:]):
        if a["score"] <= target <= b["score"] and b["score"] > a["score"]:
            t = (target - a["score"]) / (b["score"] - a["score"])
            return a["q"] + t * (b["q"] - a["q"]), a["bytes"] + t * (b["bytes"] - a["bytes"])
    end = points[0] if target < points[0]["score"] else points[-1]
    return end["q"], end["bytes"]




def summarise(results: dict, fmt: str, fixed_q: int, qrange: tuple[int, int]) -> None:
    for name, _ in VARIANTS:
        curves = [r[name][fmt] for r in results.values() if fmt in r.get(name, {})]
        if not curves:
            continue
        in_range = [[p for p in c if qrange[0] <= p["q"] <= qrange[1]] for c in curves]
        fixed = [next(p for p in c if p["q"] == fixed_q) for c in curves]
        scores = [p["score"] for p in fixed]
        fixed_bytes = sum(p["bytes"] for p in fixed)
        p10 = percentile(scores, 10)
        print(f"{name} {fmt}: {len(curves)} images; at q{fixed_q}: score p10 {p10:.1f}, median "
              f"{statistics.median(scores):.1f}, p90 {percentile(scores, 90):.1f}; bytes {fixed_bytes}")
        for target in range(int(p10) - 2, int(p10) + 12):
            chosen = [at_score(c, target) for c in in_range]
            reached = [max(target, c[0]["score"]) if target < c[0]["score"] else min(target, c[-1]["score"])
                       for c in in_range]
            qualities = [q for q, _ in chosen]
            print(f"  target {target}: bytes {sum(b for _, b in chosen) / fixed_bytes:.3f}x q{fixed_q}, "
                  f"quality median {statistics.median(qualities):.0f} "
                  f"(p10 {percentile(qualities, 10):.0f}, p90 {percentile(qualities, 90):.0f}),"
                  f" score p10 {percentile(reached, 10):.1f}, at a bound {sum(r != target for r in reached)}")


def typical(results: dict, fmt: str) -> list[tuple[int, float]]:
    """The median score at each quality over every image and variant (made non-decreasing)."""
    curves = [r[name][fmt] for r in results.values() for name, _ in VARIANTS if fmt in r.get(name, {})]
    points, floor = [], 0.0
    for i, q in enumerate(QUALITIES[fmt]):
        floor = max(floor, statistics.median(c[i]["score"] for c in curves))
        points.append((q, round(floor, 1)))
    return points


def interpolated(points: list[dict], q: int) -> tuple[float, float]:
    """(score, bytes) at quality q, between the measured qualities."""
    for a, b in zip(points, points[1:]):
        if a["q"] <= q <= b["q"]:
            t = (q - a["q"]) / (b["q"] - a["q"])
            return a["score"] + t * (b["score"] - a["score"]), a["bytes"] + t * (b["bytes"] - a["bytes"])
    raise ValueError(q)


def photographs(results: dict) -> dict:
    """The curves of the corpus' photographs (not its graphics and documents)."""
    return {name: r for name, r in results.items() if r["kind"] not in quality_corpus.NOT_PHOTOS}


def fit(results: dict) -> None:
    """The model's constants from the curves, and the search simulated on them (scores interpolated
    between the measured qualities) with the constants in publisher/imaging/targeting.py."""
    for fmt in QUALITIES:
        if any(fmt in r["display"] for r in results.values()):
            print(f"TYPICAL {fmt}: {typical(results, fmt)}")
    # A display against its thumb: how much lower it scores at the same quality, per halving of scale.
    per_step = []
    for r in results.values():
        d, t = r["display"], r["thumb"]
        if d["width"] * d["height"] > 1.5 * t["width"] * t["height"]:
            steps = math.log(d["width"] * d["height"] / (t["width"] * t["height"]), 4)
            gaps = [a["score"] - b["score"] for a, b in zip(d["webp"], t["webp"]) if 60 <= a["q"] <= 90]
            per_step.append(statistics.mean(gaps) / steps)
    print(f"display - thumb per 4x pixels, webp q60-90: median {statistics.median(per_step):.2f} "
          f"(p10 {percentile(per_step, 10):.2f}, p90 {percentile(per_step, 90):.2f}) over {len(per_step)} images")
    simulate(photographs(results))


def simulate(results: dict) -> None:
    """The search as the pipeline runs it (variants smallest first, WebP then AVIF), each probe's
    score interpolated on the image's curve: probes per variant and format, and the bytes against
    the fixed q80 (AVIF 50)."""
    from publisher.imaging import targeting
    from publisher.imaging.options import AUTO_TARGETS, QualityOptions

    options = QualityOptions()
    formats = [fmt for fmt in QUALITIES if all(fmt in r[name] for r in results.values() for name, _ in VARIANTS)]
    found: dict = {}  # (variant, format) -> [(probes, score, bytes, fixed bytes, bound)]
    for r in results.values():
        offsets: dict = {}
        for name, size in sorted(VARIANTS, key=lambda v: v[1]):
            variant = r[name]
            pixels = variant["width"] * variant["height"]
            for fmt in formats:
                count = [0]

                def probe_at(q, curve=variant[fmt], count=count):
                    count[0] += 1
                    return targeting.Probe(q, interpolated(curve, q)[0], b"")

                result = targeting.search(probe_at, fmt, options.target(name, size),
                                          targeting.expected_offset(offsets, fmt, pixels))
                offsets[fmt] = (pixels, targeting.offset(fmt, result.quality, result.score))
                fixed = options.__class__(fixed=80).fixed_quality(fmt)
                found.setdefault((name, fmt), []).append(
                    (count[0], result.score, interpolated(variant[fmt], result.quality)[1],
                     interpolated(variant[fmt], fixed)[1], result.bound))
    print(f"the search simulated at {AUTO_TARGETS} over {len(found[VARIANTS[0][0], 'webp'])} photographs:")
    for (name, fmt), rows in sorted(found.items()):
        probes = [row[0] for row in rows]
        print(f"  {name} {fmt}: probes {statistics.mean(probes):.2f} (1: {probes.count(1)}, 2: {probes.count(2)}, "
              f"3: {probes.count(3)}, more: {sum(n > 3 for n in probes)}); score p10 "
              f"{percentile([row[1] for row in rows], 10):.1f}; at a bound {sum(row[4] is not None for row in rows)}; "
              f"bytes {sum(row[2] for row in rows) / sum(row[3] for row in rows):.3f}x fixed q80")


def carry(results: dict) -> None:
    """The display not searched: its quality from the thumb's search alone (the thumb's measured offset,
    moved by SIZE_OFFSET), as Etsy reuses one search across sizes; how far its estimated score is from
    its curve's, and its curve's from auto's target, over the photographs."""
    from publisher.imaging import targeting
    from publisher.imaging.options import QUALITY_RANGES, QualityOptions

    options, fmt = QualityOptions(), "webp"
    low, high = QUALITY_RANGES[fmt]
    errors, misses = [], []
    for r in photographs(results).values():
        thumb, display = r["thumb"], r["display"]
        found = targeting.search(lambda q, c=thumb[fmt]: targeting.Probe(q, interpolated(c, q)[0], b""), fmt,
                                 options.target("thumb", 400), 0.0)
        pixels = {name: r[name]["width"] * r[name]["height"] for name in ("thumb", "display")}
        measured = {fmt: (pixels["thumb"], targeting.offset(fmt, found.quality, found.score))}
        expected = targeting.expected_offset(measured, fmt, pixels["display"])
        target = options.target("display", 1600)
        quality_ = min(max(round(targeting.typical_quality(fmt, target - expected)), low), high)
        actual = interpolated(display[fmt], quality_)[0]
        errors.append(actual - (targeting.typical_score(fmt, quality_) + expected))
        misses.append(actual - target)
    print(f"display carried from the thumb over {len(errors)} photographs: estimate within 2 points of its "
          f"score {sum(abs(e) <= 2 for e in errors) / len(errors):.0%}; score within 3 of the target "
          f"{sum(abs(m) <= 3 for m in misses) / len(misses):.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int)
    parser.add_argument("--avif", action="store_true", help="AVIF curves too (seconds per display encode)")
    parser.add_argument("--out", type=Path, default=quality_corpus.ROOT / ".run" / "quality-curves.json")
    parser.add_argument("--summarise", action="store_true", help="bytes and scores at each target, as an oracle")
    parser.add_argument("--fit", action="store_true", help="the model's constants, and the search simulated")
    parser.add_argument("--carry", action="store_true", help="the display's quality carried from the thumb's search")
    args = parser.parse_args()
    if args.summarise:
        results = photographs(json.loads(args.out.read_text()))
        summarise(results, "webp", 80, (40, 95))
        summarise(results, "avif", 50, (30, 80))
        return
    if args.carry:
        carry(json.loads(args.out.read_text()))
        return
    if args.fit:
        fit(json.loads(args.out.read_text()))
        return
    run(args.limit, ("webp", "avif") if args.avif else ("webp",), args.out)


if __name__ == "__main__":
    main()

"""The bench's `quality` part (issue 25): what a quality target buys against the fixed WebP q80 of
before, over the quality corpus' photographs, in one run.

Each photograph goes through the imaging pipeline as the variant step calls it (imaging.probe and
render) several times:
- `q80`: the fixed quality;
- `auto`: auto's default targets (publisher/imaging/options.py AUTO_TARGETS);
- `matched`: each variant's target set to q80's 10th-percentile score of this run;
- `avif` (unless --no-avif): auto's targets, published in WebP and AVIF.
Every published variant is scored against the variant before encoding (captured inside the
pipeline) with publisher.imaging.quality, whose agreement with the reference SSIMULACRA2 over the
same corpus is bench/quality_metric.py's. For each run, variant and format: the share within 3
points of the target, the scores' 10th percentile and median, the total bytes, the render's CPU and
the encodes' CPU.

    .venv/bin/python -m bench.run --parts quality        # the corpus: make quality-corpus first
"""

from __future__ import annotations

import contextlib
import statistics
import time
from pathlib import Path

from bench import quality_corpus
from bench.stats import percentile

#: The --quick run's photographs: the test corpus's, so the harness runs without the corpus.
QUICK = ("exif-orientation-1.jpg", "large-photo-12mp.jpg", "adobe-rgb.jpg")
WITHIN = 3.0


def photographs(quick: bool) -> list[Path]:
    if quick:
        return [quality_corpus.ROOT / "tests" / "fixtures" / "corpus" / name for name in QUICK]
    rows = quality_corpus.load()
    return [row["path"] for row in rows if row["kind"] not in quality_corpus.NOT_PHOTOS]


def quality_part(quick: bool, avif: bool = True) -> dict:
    from publisher.imaging.options import QualityOptions

    paths = photographs(quick)
    runs = {"q80": _run(paths, QualityOptions(fixed=80), ("webp",))}
    runs["auto"] = _run(paths, QualityOptions(), ("webp",))
    p10 = {name: percentile([v["score"] for v in variants], 10)
           for (name, fmt), variants in _by_variant(runs["q80"]).items()}
    matched = QualityOptions(targets=tuple((name, round(score, 1)) for name, score in p10.items()))
    runs["matched"] = _run(paths, matched, ("webp",))
    if avif:
        runs["avif"] = _run(paths, QualityOptions(), ("webp", "avif"))
    return {"photographs": len(paths), "files": [p.name for p in paths],
            "matched_targets": dict(matched.targets),
            "runs": {label: _summary(images) for label, images in runs.items()},
            "images": runs}


def _run(paths: list[Path], quality, formats: tuple[str, ...]) -> list[dict]:
    return [_render(path, quality, formats) for path in paths]


def _render(path: Path, quality_options, formats: tuple[str, ...]) -> dict:
    """One photograph through probe and render: each variant's bytes, quality and score (measured
    again on the published bytes), and the CPU of the render and of its encodes per format."""
    import dataclasses

    import pyvips

    from publisher import imaging
    from publisher.imaging import options, output, quality, targeting

    recipe = imaging.Recipe.from_settings(_settings())
    recipe = dataclasses.replace(recipe, output=options.OutputOptions(formats, quality_options))
    references: dict[str, pyvips.Image] = {}
    encode_cpu: dict[str, float] = {fmt: 0.0 for fmt in formats}
    with _capturing(targeting, output, references, encode_cpu):
        start = time.process_time()
        rendition = imaging.render(str(path), imaging.probe(str(path), options.DEFAULT_MAX_SOURCE_PIXELS), recipe)
        cpu = time.process_time() - start
    variants = []
    for v in rendition.variants:
        decoded = pyvips.Image.new_from_buffer(v.data, "").copy_memory()
        variants.append({"name": v.name, "format": v.format, "bytes": len(v.data), "quality": v.quality,
                         "target": v.target, "bound": v.bound, "recorded_score": v.score,
                         "score": round(quality.score(references[v.name], decoded), 2)})
    return {"file": path.name, "cpu_s": round(cpu, 4), "encode_cpu_s": {k: round(s, 4) for k, s in encode_cpu.items()},
            "variants": variants}


@contextlib.contextmanager
def _capturing(targeting, output, references: dict, encode_cpu: dict):
    """Keeps each variant's image before encoding, and times every encode by format."""
    encode_variants, encode = targeting.encode_variants, output.encode

    def capture(variants, *args, **kwargs):
        references.update({name: image for name, _, image in variants})
        return encode_variants(variants, *args, **kwargs)

    def timed(image, fmt, *args, **kwargs):
        start = time.process_time()
        try:
            return encode(image, fmt, *args, **kwargs)
        finally:
            encode_cpu[fmt] += time.process_time() - start

    targeting.encode_variants, output.encode = capture, timed
    try:
        yield
    finally:
        targeting.encode_variants, output.encode = encode_variants, encode


def _settings():
    from publisher.settings.job import Settings

    return Settings


def _by_variant(images: list[dict]) -> dict[tuple[str, str], list[dict]]:
    found: dict[tuple[str, str], list[dict]] = {}
    for image in images:
        for v in image["variants"]:
            found.setdefault((v["name"], v["format"]), []).append(v)
    return found


def _summary(images: list[dict]) -> dict:
    out = {}
    for (name, fmt), variants in _by_variant(images).items():
        scores = [v["score"] for v in variants]
        targeted = [v for v in variants if v["target"] is not None]
        within = [v for v in targeted if abs(v["score"] - v["target"]) <= WITHIN]
        out[f"{name} {fmt}"] = {
            "n": len(variants), "bytes": sum(v["bytes"] for v in variants),
            "score_p10": round(percentile(scores, 10), 2), "score_median": round(statistics.median(scores), 2),
            "quality_median": statistics.median(v["quality"] for v in variants),
            "within_3": round(len(within) / len(targeted), 3) if targeted else None,
            "outside_at_a_bound": sum(1 for v in targeted if v not in within and v["bound"]),
        }
    out["cpu_s"] = round(sum(i["cpu_s"] for i in images), 3)
    out["encode_cpu_s"] = {fmt: round(sum(i["encode_cpu_s"].get(fmt, 0) for i in images), 3)
                           for fmt in images[0]["encode_cpu_s"]}
    return out




def targets(part: dict) -> list[tuple[str, float, float, bool]]:
    """(measure, value, limit, at_most) of issue 25's table that this part measures."""
    runs = part["runs"]
    out = []
    for key, auto in runs["auto"].items():
        if not isinstance(auto, dict) or "n" not in auto:
            continue
        fixed, matched = runs["q80"][key], runs["matched"][key]
        out += [(f"{key}: within +-3 of the target (auto)", auto["within_3"], 0.9, False),
                (f"{key}: score p10 auto - q80", auto["score_p10"] - fixed["score_p10"], 5.0, False),
                (f"{key}: bytes auto/q80", auto["bytes"] / fixed["bytes"], 1.0, True),
                (f"{key}: bytes at q80's p10/q80", matched["bytes"] / fixed["bytes"], 0.8, True)]
    if "avif" in runs:
        both = runs["avif"]
        for key in [k for k in both if k.endswith(" avif")]:
            webp = key.replace(" avif", " webp")
            out.append((f"{key}: bytes avif/webp (auto)", both[key]["bytes"] / both[webp]["bytes"], 0.85, True))
        cpu = both["encode_cpu_s"]
        out.append(("encode CPU avif/webp (auto's searches)", cpu["avif"] / cpu["webp"], 1.5, True))
    return out

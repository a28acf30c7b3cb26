"""Peak memory of one job per source format, for the worst case of each format.

    python -m bench.peak_per_format [--megapixels 24] [--out bench/results/peak-per-format.json]

For each format a source of the given size is made (a smooth picture with
grain, cached under bench/.cache/), in the layout that costs the decoder most:
progressive JPEG, interlaced 16-bit PNG with alpha, a one-strip TIFF, 10-bit
HEIC, ... Each is rendered with the default recipe in a fresh process; the
figure is that process's peak resident size (VmHWM) minus its peak before the
render (interpreter, libraries, the header probe), i.e. what one job adds.
The estimate publisher.imaging.memory reserves for the same source is printed
beside it: it must not be below the measurement.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

from .inputs import CACHE, ROOT, SEED

#: Renders argv[1] with the default recipe; prints the peaks before and after, in KiB.
MEASURE = """
import json, sys
from publisher.imaging import InputOptions, Recipe, probe, render
from publisher.imaging.pipeline import reservation

def hwm():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])

path = sys.argv[1]
probed = probe(path, 10**10)
recipe = Recipe(InputOptions(max_pixels=10**10, memory_budget=2**40))
before = hwm()
render(path, probed, recipe)
print(json.dumps({"before_kb": before, "after_kb": hwm(), "estimate_bytes": reservation(probed, recipe),
                  "format": probed.format, "width": probed.width, "height": probed.height}))
"""


def _picture(width: int, height: int, bands: int = 3):
    import pyvips

    x = pyvips.Image.xyz(width, height)
    smooth = (x[0] * (255 / width)).bandjoin([x[1] * (255 / height), (x[0] + x[1]) * (255 / (width + height))])
    grain = pyvips.Image.gaussnoise(width, height, sigma=6, seed=SEED)
    image = (smooth + grain).cast("uchar").copy(interpretation="srgb")
    if bands == 4:
        image = image.bandjoin(255)
    return image


def sources(megapixels: int, only=None) -> dict[str, Path]:
    """name -> file (those named in `only`, default all), made once per size."""
    width = int(math.sqrt(megapixels * 1e6 * 4 / 3))
    height = int(width * 3 / 4)
    made = {}
    specs = {
        "jpeg-baseline": ("jpg", lambda im, p: im.jpegsave(p, Q=90, subsample_mode="on")),
        "jpeg-progressive": ("jpg", lambda im, p: im.jpegsave(p, Q=90, interlace=True)),
        "png-8bit": ("png", lambda im, p: im.pngsave(p, compression=1)),
        "png-interlaced-16bit-alpha": ("png", lambda im, p: (im.bandjoin(255).cast("ushort") * 257)
                                       .cast("ushort").copy(interpretation="rgb16")
                                       .pngsave(p, interlace=True, compression=1)),
        "gif": ("gif", lambda im, p: im.gifsave(p, effort=1)),
        "webp": ("webp", lambda im, p: im.webpsave(p, Q=80, effort=0)),
        "tiff-lzw-strips": ("tif", lambda im, p: im.tiffsave(p, compression="lzw")),
        "tiff-deflate-tiled": ("tif", lambda im, p: im.tiffsave(p, compression="deflate", tile=True)),
        "heic": ("heic", None),
        "heic-10bit": ("heic", None),
        "avif": ("avif", lambda im, p: im.heifsave(p, compression="av1", effort=0, Q=50)),
    }
    for name, (ext, save) in specs.items():
        if only and name not in only:
            continue
        path = CACHE / f"peak-{name}-{megapixels}mp-seed{SEED}.{ext}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name("tmp-" + path.name)
            if name.startswith("heic"):
                _save_heic(width, height, tmp, ten_bit=name.endswith("10bit"))
            else:
                save(_picture(width, height), str(tmp))
            tmp.replace(path)
        made[name] = path
    return made


def _save_heic(width: int, height: int, path: Path, ten_bit: bool) -> None:
    import pillow_heif

    image = _picture(width, height)
    data = image.write_to_memory()
    mode = "RGB"
    if ten_bit:
        data = (image.cast("ushort") * 256).write_to_memory()  # 16 bits, left-aligned as libheif wants
        mode = "RGB;16"
    heif = pillow_heif.from_bytes(mode=mode, size=(width, height), data=data)
    heif.save(str(path), quality=50, bit_depth=10 if ten_bit else 8)


def measure(path: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", MEASURE, str(path)], cwd=ROOT, capture_output=True, text=True,
                            timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"{path.name}: {result.stderr.strip()[-500:]}")
    row = json.loads(result.stdout.strip().splitlines()[-1])
    row["job_peak_mb"] = round((row["after_kb"] - row["before_kb"]) / 1024, 1)
    row["estimate_mb"] = round(row["estimate_bytes"] / 2**20, 1)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peak_per_format", description=__doc__.split("\n\n")[0])
    parser.add_argument("--megapixels", type=int, default=24)
    parser.add_argument("--only", nargs="*", help="formats to measure (default: all)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rows = {}
    for name, path in sources(args.megapixels, args.only).items():
        row = measure(path)
        rows[name] = row
        mp = row["width"] * row["height"] / 1e6
        print(f"{name:<28} {mp:6.1f} MP  job peak {row['job_peak_mb']:8.1f} MB "
              f"({row['job_peak_mb'] * 2**20 / (mp * 1e6):5.2f} B/px)  reserved {row['estimate_mb']:8.1f} MB",
              flush=True)
    if args.out:
        args.out.write_text(json.dumps({"megapixels": args.megapixels, "formats": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

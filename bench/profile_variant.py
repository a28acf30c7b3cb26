"""Our variant step in a loop, for a profiler to look at:

    py-spy record --native --format raw -o /tmp/variant.folded -- \\
        python -m bench.profile_variant PATH [REPEAT]
    python -m bench.profile_variant --summary /tmp/variant.folded

py-spy's --native mode sees into libvips and libwebp, where the time goes
(pyinstrument only sees the Python frames, which are a thin layer here).
"""

from __future__ import annotations

import collections
import sys


def loop(path: str, repeat: int) -> None:
    from publisher import imaging
    from publisher.config import Settings

    for _ in range(repeat):
        probed = imaging.probe(path, Settings.max_source_pixels)
        imaging.render(path, probed, Settings.variants, Settings.webp_quality)


#: Native libraries by the symbol prefixes that identify them in a stack.
LIBRARIES = (
    ("libwebp (encode)", ("VP8", "WebP", "Encode", "Quantize", "ReconstructRow", "TrellisQuantize", "GetResidualCost",
                          "ITransform", "FTransform", "Disto", "SSE", "CollectHistogram", "ImportYUVA",
                          "ConvertRGB", "RGB24PackedToPlanar", "AccumulateRGB", "SharpYUV")),
    ("libjpeg (decode)", ("jpeg_", "decode_mcu", "jsimd", "ycc_", "h2v", "process_data", "decompress",
                          "read_jpeg", "jpeg_idct", "jsimd_idct", "sep_upsample")),
    ("libvips resize", ("vips_reduce", "reduce", "vips_shrink", "shrink")),
    ("lcms (colour)", ("cmsDo", "Eval", "PrelinEval", "_cms", "cms")),
)


def summary(folded_path: str) -> None:
    """Share of samples whose stack contains each library (by leaf-most match)."""
    totals = collections.Counter()
    all_samples = 0
    for line in open(folded_path):
        stack, _, count = line.rstrip().rpartition(" ")
        count = int(count)
        all_samples += count
        frames = stack.split(";")
        label = "other (python, glib, threads)"
        for frame in reversed(frames):
            name = frame.split(" ")[0]
            hit = next((lib for lib, prefixes in LIBRARIES if name.startswith(prefixes)), None)
            if hit:
                label = hit
                break
        totals[label] += count
    for label, count in totals.most_common():
        print(f"{count / all_samples * 100:5.1f} %  {label}")


if __name__ == "__main__":
    if sys.argv[1] == "--summary":
        summary(sys.argv[2])
    else:
        loop(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20)

"""Where the variant step's CPU goes, stage by stage (median of several runs,
CPU seconds of all threads):

    python -m bench.profile_variant PATH [RUNS]

A sampling profiler does not help much here: py-spy sees only Python threads,
and the work happens in libvips' own threads (pyvips-binary's libvips has no
symbols either). So the stages are timed one by one, with the calls
publisher.imaging makes.
"""

from __future__ import annotations

import math
import resource
import statistics
import sys

import pyvips


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = cpu()
        fn()
        samples.append(cpu() - start)
    return statistics.median(samples)


def main(path: str, runs: int) -> None:
    from publisher import imaging
    from publisher.imaging import colour, options, output, placeholder, resize
    from publisher.imaging.input import open_source
    from publisher.imaging.options import InputOptions
    from publisher.settings.job import Settings

    def decode():  # what render does for the largest variant
        source = open_source(path, probed, InputOptions())
        return colour.to_srgb8(resize.first_variant(source, size, colour.conversion_options(probed.interpretation)))

    # publisher.imaging.engine (imported with the stages) sets libvips up as a worker has it:
    # no operation cache (every stage really runs), one thread per image.
    size = max(s for _, s in Settings.variants)
    q = 80  # the encoder quality profiled (VARIANT_QUALITY=q80)

    probed = imaging.probe(path, options.DEFAULT_MAX_SOURCE_PIXELS)
    fallback = "cmyk" if probed.interpretation == "cmyk" else "srgb"
    shrink = resize.jpeg_shrink_on_load(probed, size) if probed.format == "jpeg" else 1
    base = decode().copy_memory()
    thumb = base.thumbnail_image(400, height=400, size="down").copy_memory()
    rows = [
        ("probe (header only)", lambda: imaging.probe(path, options.DEFAULT_MAX_SOURCE_PIXELS)),
        (f"decode to {size} as render does (libjpeg shrink {shrink})", lambda: decode().copy_memory()),
        (f"decode to {size} with libvips thumbnail alone, sRGB fallback profile (before)",
         lambda: pyvips.Image.thumbnail(path, size, height=size, size="down", fail_on="truncated",
                                        input_profile=fallback, output_profile="srgb").copy_memory()),
        (f"decode to {size} with libvips thumbnail alone, output profile only (slower!)",
         lambda: pyvips.Image.thumbnail(path, size, height=size, size="down", fail_on="truncated",
                                        output_profile="srgb").copy_memory()),
        (f"decode to {size} as render does, but random access (whole decode in memory)",
         lambda: pyvips.Image.new_from_file(path, access="random", shrink=shrink)
         .thumbnail_image(size, height=size, size="down").copy_memory()),
    ]
    for effort, preset in ENCODINGS:
        rows.append((f"WebP encode {base.width}x{base.height}, {encoding(effort, preset)}",
                     lambda effort=effort, preset=preset: encode(base, q, effort, preset)))
    rows.append(("thumb 400 from the decoded base + encode", lambda: output.encode(
        base.thumbnail_image(400, height=400, size="down"), "webp", q)))
    rows.append(("LQIP placeholder from the 400 px thumb", lambda: placeholder.lqip_data_uri(thumb)))
    rows.append(("dominant colour from the 400 px thumb", lambda: placeholder.dominant_colour(thumb)))
    rows.append(("whole render (publisher.imaging as it is now)",
                 lambda: imaging.render(path, probed, imaging.Recipe.from_settings(Settings))))
    print(f"{path}: CPU seconds, median of {runs}, libvips concurrency {pyvips.concurrency_get()}")
    for label, fn in rows:
        print(f"  {timed(fn, runs):6.3f}  {label}")
    for effort, preset in ENCODINGS:
        data = encode(base, q, effort, preset)
        print(f"  {encoding(effort, preset)}: {len(data)} bytes, "
              f"PSNR {psnr(base, pyvips.Image.new_from_buffer(data, '')):.2f} dB against the decoded base")


#: WebP settings compared: (effort, libwebp preset or None for libvips' default).
ENCODINGS = ((4, None), (3, None), (2, None), (2, "photo"), (1, None), (0, None))


def encoding(effort: int, preset: str | None) -> str:
    return f"effort {effort}" + (f", preset {preset}" if preset else "")


def encode(image: pyvips.Image, quality: int, effort: int, preset: str | None) -> bytes:
    return image.webpsave_buffer(Q=quality, keep="none", effort=effort, **({"preset": preset} if preset else {}))


def psnr(reference: pyvips.Image, image: pyvips.Image) -> float:
    """Peak signal-to-noise ratio in dB: what the encoder lost (higher is closer)."""
    mse = ((reference.cast("float") - image.cast("float")) ** 2).avg()
    return 10 * math.log10(255**2 / mse) if mse else float("inf")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 7)

"""Every file of the test corpus through the real pipeline (Postgres, SeaweedFS,
the origin, the listener and workers), published as WebP and AVIF, and the
published objects checked against what a buyer should see.

References are made independently of the code under test: Pillow decodes the
originals and LittleCMS (Pillow's ImageCms) converts their colours."""

from __future__ import annotations

import base64
import io
import os
import re
import struct
from pathlib import Path

import pillow_heif
import pytest
import pyvips
from PIL import Image, ImageCms, ImageOps

from tests.conftest import CORPUS
from tests.support.quality import assert_quality_chosen, auto_target
from tests.support.stack import Stack

BROKEN = {
    "bomb-avif-17000x17000.avif": "over MAX_SOURCE_PIXELS",
    "bomb-gif-65535x66601.gif": "unreadable gif",
    "bomb-png-ztxt.png": "decompression bomb",
    "truncated.jpg": "corrupt or truncated jpeg: the file ends before its end-of-image marker",
}
ANIMATED = {"animated.gif": 30, "animated.webp": 9}  # source frames
ORIENTATIONS = [f"exif-orientation-{n}.jpg" for n in range(1, 9)]
#: Mean absolute difference per channel (0-255) tolerated between a published
#: variant and its reference: lossy encoding plus a different resampler.
SAME_PICTURE = 6.0


def corpus_files() -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir() if p.suffix not in (".tsv", ".md"))


@pytest.fixture(scope="module")
def published(pg_server, s3, origin, tmp_path_factory):
    """Every corpus file, published once; {file name: job row joined with its file}."""
    system = Stack(pg_server, s3, origin, tmp_path_factory.mktemp("corpus"), VARIANT_FORMATS="webp,avif",
                   VARIANT_QUALITY="auto")
    system.start_workers()
    system.start_listener()
    try:
        jobs = {name: system.publish(name) for name in corpus_files()}
        rows = {name: system.wait_for(job_id, timeout=300) for name, job_id in jobs.items()}
        for _name, row in rows.items():
            row.update(system.sql(
                "SELECT recipe, placeholder, dominant_color FROM auction_files WHERE id = %s", (row["file_id"],))[0])
        yield system, rows
    finally:
        system.stop()


def good(rows) -> dict:
    return {name: row for name, row in rows.items() if name not in BROKEN}


def fetch(system, entry) -> bytes:
    data, headers = system.object(entry["key"])
    assert len(data) == entry["bytes"]
    assert headers["Content-Type"] == entry["content_type"]
    return data


def decode(data: bytes, n: int = 1) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "", n=n)


def variant_image(system, row, name="thumb", fmt="webp") -> pyvips.Image:
    return decode(fetch(system, row["variants"][name]["formats"][fmt]))


def as_vips(image: Image.Image) -> pyvips.Image:
    image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    return pyvips.Image.new_from_memory(image.tobytes(), image.width, image.height, len(image.getbands()), "uchar")


def reference(name: str, size: tuple[int, int], fallback_profile: bytes | None = None) -> pyvips.Image:
    """Pillow's decode, upright, converted to sRGB by LittleCMS (perceptual intent), resized."""
    pillow_heif.register_heif_opener()
    image = Image.open(CORPUS / name)
    if not name.endswith(".heic"):  # HEIF transforms are applied by the decoder; its EXIF tag is stale
        image = ImageOps.exif_transpose(image)
    icc = image.info.get("icc_profile") or fallback_profile
    if icc:
        image = ImageCms.profileToProfile(
            image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"),
            renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB")
    return as_vips(image.convert("RGB").resize(size, Image.Resampling.LANCZOS))


def diff(a: pyvips.Image, b: pyvips.Image) -> float:
    a, b = a[:3] if a.bands > 3 else a, b[:3] if b.bands > 3 else b
    assert (a.width, a.height) == (b.width, b.height)
    return (a.cast("float") - b.cast("float")).abs().avg()


def colour_diff(a: pyvips.Image, b: pyvips.Image) -> float:
    """diff() of 8x8 block means: colour, without the edges lossy coding blurs."""
    return diff(a.shrink(8, 8), b.shrink(8, 8))


def colour_cast(a: pyvips.Image, b: pyvips.Image) -> float:
    """The largest difference of a channel's mean: the overall shift a wrong profile causes."""
    return max(abs(a[i].avg() - b[i].avg()) for i in range(3))


def riff_chunks(webp: bytes) -> list[bytes]:
    assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP"
    chunks, i = [], 12
    while i + 8 <= len(webp):
        kind, size = webp[i:i + 4], struct.unpack("<I", webp[i + 4:i + 8])[0]
        chunks.append(kind)
        i += 8 + size + (size & 1)
    return chunks


# -- everything that should publish, publishes, at the right sizes ------------

def test_every_good_file_is_published_in_both_formats_at_fitted_sizes(published):
    system, rows = published
    for name, row in good(rows).items():
        assert row["status"] == "completed", (name, row["last_error"])
        assert row["publish_status"] == "published"
        manifest_w, manifest_h = row["width"], row["height"]  # displayed size, from the probe
        for variant, size in (("thumb", 400), ("display", 1600)):
            v = row["variants"][variant]
            scale = min(1.0, size / max(manifest_w, manifest_h))  # never upscaled
            assert (v["width"], v["height"]) == (round(manifest_w * scale), round(manifest_h * scale)), name
            expected_formats = {"webp"} if name in ANIMATED else {"webp", "avif"}
            assert set(v["formats"]) == expected_formats, name
            # the contract's top-level fields are the WebP's
            assert v["key"] == v["formats"]["webp"]["key"] and v["url"].endswith(v["key"])
            assert re.fullmatch(rf"media/{row['file_id']}/{variant}-[0-9a-f]{{16}}\.webp", v["key"])
            for fmt, entry in v["formats"].items():
                image = decode(fetch(system, entry))
                assert image.get("vips-loader") == {"webp": "webpload_buffer", "avif": "heifload_buffer"}[fmt]
                assert (image.width, image.height) == (v["width"], v["height"]), (name, variant, fmt)


def test_every_format_of_every_variant_is_at_its_quality_target_or_at_the_end_of_its_range(published):
    _, rows = published
    for name, row in good(rows).items():
        for variant, v in row["variants"].items():
            for fmt, entry in v["formats"].items():
                try:
                    assert_quality_chosen(entry, auto_target(variant), (v["width"], v["height"]))
                except AssertionError as e:
                    raise AssertionError(f"{name} {variant} {fmt}: {e}") from None


def test_displayed_sizes_are_recorded_after_orientation(published):
    _, rows = published
    for name in ORIENTATIONS:
        assert (rows[name]["width"], rows[name]["height"]) == (1800, 1200), name
    # the iPhone photo is stored 4032x3024 with a 270 degree irot: a portrait
    assert (rows["iphone-grid-p3.heic"]["width"], rows["iphone-grid-p3.heic"]["height"]) == (3024, 4032)
    assert (rows["large-photo-12mp.jpg"]["width"], rows["large-photo-12mp.jpg"]["height"]) == (4032, 3024)


def test_front_end_fields_and_recipe(published):
    _, rows = published
    recipes = {row["recipe"] for row in good(rows).values()}
    assert len(recipes) == 1 and re.fullmatch(r"[0-9a-f]{12}", recipes.pop())
    for name, row in good(rows).items():
        assert re.fullmatch(r"#[0-9a-f]{6}", row["dominant_color"]), name
        prefix = "data:image/webp;base64,"
        assert row["placeholder"].startswith(prefix)
        tiny = decode(base64.b64decode(row["placeholder"][len(prefix):]))
        assert max(tiny.width, tiny.height) <= 16 and len(row["placeholder"]) < 1000, name
    # a dark photo has a dark dominant colour, a blue sky a blue one
    assert rows["exif-orientation-1.jpg"]["dominant_color"][5:] > rows["exif-orientation-1.jpg"]["dominant_color"][1:3]


# -- orientation --------------------------------------------------------------

def test_all_eight_exif_orientations_give_the_same_upright_picture(published):
    system, rows = published
    upright = variant_image(system, rows["exif-orientation-1.jpg"], "display")
    for name in ORIENTATIONS[1:]:
        image = variant_image(system, rows[name], "display")
        assert diff(image, upright) < SAME_PICTURE, name
        # and a wrong orientation would be caught: the mirrored picture is far off
        assert diff(image.fliphor(), upright) > 3 * SAME_PICTURE, name


# -- colour -------------------------------------------------------------------

def patch(image: pyvips.Image, left: int, top: int, width: int, height: int) -> list[float]:
    """The mean colour of a uniform area."""
    area = image.crop(left, top, width, height)
    return [area[i].avg() for i in range(3)]


def test_cmyk_is_converted_through_a_cmyk_profile_and_blacks_stay_black(published):
    system, rows = published
    image = variant_image(system, rows["cmyk.jpg"])  # 100x100, not upscaled
    cmyk_profile = pyvips.Operation.call("profile_load", "cmyk")  # the press profile libvips ships
    ref = reference("cmyk.jpg", (100, 100), fallback_profile=cmyk_profile)
    naive = as_vips(Image.open(CORPUS / "cmyk.jpg").convert("RGB"))  # 255-C-K per channel, no profile
    # the red patch (C0 M95 Y91 K0): the profile's red (232,29,28), not the naive
    # formula's (255,13,24); lossy WebP's halved chroma moves a 5-pixel-high patch by a few
    # levels, at any quality (at q95, which its quality target takes, by 8 in red)
    red = patch(image, 3, 1, 10, 3)
    assert all(abs(a - b) < 10 for a, b in zip(red, patch(ref, 3, 1, 10, 3))), red
    assert max(abs(a - b) for a, b in zip(patch(naive, 3, 1, 10, 3), patch(ref, 3, 1, 10, 3))) > 15
    # the rich black background (C95 M84 Y82 K90) is black on screen, not the slate
    # grey (31,33,43) that relative colorimetric makes of the press's black
    assert max(patch(image, 5, 85, 90, 12)) < 5
    relative = pyvips.Image.thumbnail(str(CORPUS / "cmyk.jpg"), 100, input_profile="cmyk",
                                      output_profile="srgb", intent="relative").copy_memory()
    assert min(patch(relative, 5, 85, 90, 12)) > 25  # what this test tells apart
    assert colour_diff(image, ref) < 4


@pytest.mark.parametrize("name", ["adobe-rgb.jpg", "prophoto.jpg", "iphone-grid-p3.heic"])
def test_wide_gamut_profiles_are_converted_to_srgb_not_merely_tagged(published, name):
    system, rows = published
    row = rows[name]
    image = variant_image(system, row)
    size = (row["variants"]["thumb"]["width"], row["variants"]["thumb"]["height"])
    converted = reference(name, size)
    assert colour_diff(image, converted) < 2
    assert colour_cast(image, converted) < 1.0
    # the same pixels merely tagged (not converted) are measurably off
    pillow_heif.register_heif_opener()
    tagged = Image.open(CORPUS / name)
    if not name.endswith(".heic"):
        tagged = ImageOps.exif_transpose(tagged)
    tagged = as_vips(tagged.convert("RGB").resize(size, Image.Resampling.LANCZOS))
    assert colour_cast(tagged, converted) > 1.2, name


@pytest.mark.parametrize("name", ["tiff-lzw.tif", "avif.avif", "hevc.heic", "png-palette.png", "progressive.jpg"])
def test_other_formats_match_their_decoded_original(published, name):
    system, rows = published
    pillow_heif.register_heif_opener()
    row = rows[name]
    image = variant_image(system, row)
    if name == "avif.avif":  # Pillow may lack AV1: the same picture as the TIFF, hopper
        ref = reference("tiff-lzw.tif", (image.width, image.height))
    else:
        ref = reference(name, (image.width, image.height))
    assert diff(image, ref) < SAME_PICTURE, name


# -- alpha, grey, 16 bit --------------------------------------------------------

@pytest.mark.parametrize("name", ["png-alpha.png", "png-16bit-rgb-trns.png"])
def test_transparency_is_kept_in_every_format(published, name):
    system, rows = published
    for fmt in ("webp", "avif"):
        image = variant_image(system, rows[name], "thumb", fmt)
        assert image.hasalpha(), (name, fmt)
        alpha = image[image.bands - 1]
        assert alpha.min() == 0 and alpha.max() == 255, (name, fmt)


def test_grayscale_stays_grey_and_16bit_is_scaled_not_clipped(published):
    system, rows = published
    grey = variant_image(system, rows["png-grayscale-1bit.png"], "display")
    r, g, b = grey[0].cast("float"), grey[1].cast("float"), grey[2].cast("float")
    assert (r - g).abs().max() <= 2 and (g - b).abs().max() <= 2
    assert grey.min() < 20 and grey.max() > 235  # black and white, not a wash of grey
    sixteen = variant_image(system, rows["png-16bit-rgb-trns.png"])
    ref = reference("png-16bit-rgb-trns.png", (32, 32))
    # 16-bit samples scaled to 8 bits (a cast would clip nearly all to white); edges
    # next to transparency are blurred by 4:2:0 chroma, so compare the mean over opaque pixels
    opaque = (sixteen[3] > 128).bandjoin([sixteen[3] > 128] * 2) / 255
    error = (sixteen[:3].cast("float") - ref.cast("float")).abs() * opaque
    # (a 32x32 gradient loses about 14 levels to lossy WebP; clipping would lose about 100)
    assert error.avg() / opaque.avg() < 25


# -- metadata -------------------------------------------------------------------

def test_no_metadata_in_any_published_object(published):
    system, rows = published
    for name, row in good(rows).items():
        for v in row["variants"].values():
            for fmt, entry in v["formats"].items():
                data = fetch(system, entry)
                fields = set(decode(data).get_fields())
                assert not fields & {"exif-data", "xmp-data", "iptc-data", "icc-profile-data"}, (name, fmt, fields)
                if fmt == "webp":
                    assert not set(riff_chunks(data)) & {b"EXIF", b"XMP ", b"ICCP"}, name
                assert b"Exif\x00\x00" not in data and b"<x:xmpmeta" not in data, (name, fmt)
    # the sources did carry metadata: it was removed, not absent
    assert pyvips.Image.new_from_file(str(CORPUS / "large-photo-12mp.jpg")).get_typeof("exif-data")
    assert pyvips.Image.new_from_file(str(CORPUS / "adobe-rgb.jpg")).get_typeof("xmp-data")


# -- animation ------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ANIMATED))
def test_animations_stay_animated_with_the_same_timing(published, name):
    system, rows = published
    row = rows[name]
    source = pyvips.Image.new_from_file(str(CORPUS / name), n=-1)
    assert source.get("n-pages") == ANIMATED[name]
    for variant in ("thumb", "display"):
        v = row["variants"][variant]
        assert v["frames"] == ANIMATED[name]
        image = decode(fetch(system, v["formats"]["webp"]), n=-1)
        # libwebp merges identical consecutive frames, adding up their delays
        assert image.get("n-pages") > 1
        assert sum(image.get("delay")) == sum(source.get("delay"))
        assert (image.width, image.get("page-height")) == (80, 80)  # never upscaled


# -- what must not publish ----------------------------------------------------------

@pytest.mark.parametrize("name", sorted(BROKEN))
def test_bombs_and_broken_files_fail_permanently_with_a_clear_error(published, name):
    _, rows = published
    row = rows[name]
    assert row["status"] == "failed" and row["publish_status"] == "failed"
    assert row["retry_count"] == 0  # permanent: not retried
    assert BROKEN[name] in row["last_error"], row["last_error"]
    assert row["variants"] is None


# -- the contact sheet, rendered by a real browser -------------------------------------

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def test_contact_sheet_shows_every_original_and_variant_in_chromium(published, tmp_path):
    import functools
    import http.server
    import subprocess
    import threading

    from devstack.ports import free_port
    from publisher.ops.contact_sheet import LOADED_ID, write_contact_sheet
    from publisher.settings.job import load_settings

    system, rows = published
    page = write_contact_sheet(tmp_path / "sheet", load_settings(system.env))
    assert page == tmp_path / "sheet" / "index.html"
    text = page.read_text()
    expected = 0
    for name, row in good(rows).items():
        assert name in text
        expected += 1 + sum(len(v["formats"]) for v in row["variants"].values()) + 1  # original, variants, placeholder
        for v in row["variants"].values():
            assert f"{v['width']}x{v['height']}" in text
            for entry in v["formats"].values():  # the quality and the score under each image
                assert f"q{entry['quality']}, score {entry['score']:.1f} (target {entry['target']:g}" in text
    assert "(PNG preview)" in text  # HEIC and TIFF originals, which browsers do not show

    assert Path(CHROMIUM).exists(), "chromium is missing: `make chromium` installs it (make test does)"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(page.parent))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dom = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=30000",
             "--dump-dom", f"http://127.0.0.1:{server.server_address[1]}/index.html"],
            capture_output=True, text=True, timeout=180).stdout
    finally:
        server.shutdown()
        server.server_close()
    loaded = re.search(rf'<output id="{LOADED_ID}">([^<]*)</output>', dom)
    assert loaded, dom[-2000:]
    assert loaded.group(1) == f"{expected}/{expected}"

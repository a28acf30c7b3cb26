"""The imaging stages on their own: options, detection, probing and limits,
animation, placeholders. Pure functions on files; no services."""

import base64

import pytest
import pyvips

from publisher import imaging
from publisher.errors import PermanentError
from publisher.imaging import options, placeholder, resize
from publisher.imaging.input import frames_to_decode
from publisher.settings.job import ConfigError, load_settings
from tests.conftest import CORPUS

MAX_PIXELS = options.DEFAULT_MAX_SOURCE_PIXELS


def corpus(name: str) -> str:
    return str(CORPUS / name)


# -- options --------------------------------------------------------------------

def test_formats_always_start_with_webp_and_reject_unknown_ones():
    assert options.parse_formats("webp") == ("webp",)
    assert options.parse_formats("avif") == ("webp", "avif")
    assert options.parse_formats(" WEBP , avif ,avif") == ("webp", "avif")
    with pytest.raises(ValueError, match="formats must be among webp, avif, got webp, jpeg"):
        options.parse_formats("jpeg")


def test_variants_need_unique_names_and_positive_sizes():
    assert options.parse_variants("thumb:400,display:1600") == (("thumb", 400), ("display", 1600))
    with pytest.raises(ValueError, match="unique"):
        options.parse_variants("a:1,a:2")
    with pytest.raises(ValueError, match="name:size"):
        options.parse_variants("thumb:0")


def test_bad_imaging_environment_is_reported_by_name():
    env = {"DATABASE_URL": "postgresql://localhost/x", "RAID_PUB_ENDPOINT": "https://raid",
           "RAID_PUBLISHER_SECRET": "s",
           "B2_KEY_ID": "k", "B2_APP_KEY": "a", "B2_BUCKET": "b", "B2_ENDPOINT": "s3.example", "B2_REGION": "r",
           "CDN_BASE_URL": "https://cdn"}
    settings = load_settings(env)
    assert settings.variant_formats == ("webp",)
    assert load_settings({**env, "VARIANT_FORMATS": "webp,avif"}).variant_formats == ("webp", "avif")
    with pytest.raises(ConfigError) as e:
        load_settings({**env, "VARIANT_FORMATS": "gif", "VARIANTS": "thumb", "MEMORY_BUDGET_MB": "10"})
    for name in ("VARIANT_FORMATS", "VARIANTS", "MEMORY_BUDGET_MB"):
        assert name in str(e.value)


def test_recipe_version_changes_with_whatever_changes_the_bytes():
    decoders = {"libvips": "8.18.7", "pillow_heif": "1.8.1"}
    base = options.Recipe()
    version = base.version(decoders)
    assert len(version) == 12 and version == options.Recipe().version(dict(decoders))
    changed = [
        options.Recipe(output=options.OutputOptions(quality=options.parse_quality("thumb:78"))),
        options.Recipe(output=options.OutputOptions(formats=("webp", "avif"))),
        options.Recipe(resize=options.ResizeOptions((("thumb", 400), ("display", 1200)))),
        options.Recipe(input=options.InputOptions(max_animation_frames=10)),
    ]
    versions = {r.version(decoders) for r in changed} | {base.version({**decoders, "libvips": "8.19.0"})}
    assert len(versions) == 5 and version not in versions
    # the pixel limit refuses files; it does not change the bytes of the others
    assert options.Recipe(input=options.InputOptions(max_pixels=10)).version(decoders) == version


# -- detection and probing ----------------------------------------------------------

@pytest.mark.parametrize("name,fmt", [
    ("cmyk.jpg", "jpeg"), ("png-palette.png", "png"), ("animated.gif", "gif"), ("animated.webp", "webp"),
    ("tiff-lzw.tif", "tiff"), ("hevc.heic", "heic"), ("iphone-grid-p3.heic", "heic"), ("avif.avif", "avif"),
])
def test_formats_are_told_by_their_bytes(name, fmt):
    assert imaging.sniff(corpus(name)) == fmt


def test_not_an_image_is_refused_with_what_it_is(tmp_path):
    for content, says in ((b"", "empty"), (b"<!doctype html><html>", "HTML page"), (b'{"a": 1}', "JSON"),
                          (b"%PDF-1.7\n%\xe2\xe3", "PDF document"), (b"PK\x03\x04\x14\x00", "ZIP archive"),
                          (b"BM6\x00\x0c\x00\x00\x00", "BMP image"), (b"lot;price\n17;200\n", "plain text"),
                          (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", "brand 'isom'")):
        path = tmp_path / "f"
        path.write_bytes(content)
        with pytest.raises(PermanentError, match=says):
            imaging.probe(str(path), MAX_PIXELS)


def test_probe_gives_the_displayed_size():
    rotated = imaging.probe(corpus("exif-orientation-6.jpg"), MAX_PIXELS)  # stored 1200x1800
    assert (rotated.width, rotated.height) == (1800, 1200)
    heic = imaging.probe(corpus("iphone-grid-p3.heic"), MAX_PIXELS)
    assert (heic.format, heic.width, heic.height) == ("heic", 3024, 4032)
    assert imaging.probe(corpus("animated.gif"), MAX_PIXELS).pages == 30


@pytest.mark.parametrize("name,message", [
    ("bomb-avif-17000x17000.avif", "avif of 17000x17000 pixels is over MAX_SOURCE_PIXELS"),
    ("bomb-png-ztxt.png", "zTXt 'big1' inflates past 1048576 bytes: a decompression bomb"),
    ("bomb-gif-65535x66601.gif", "unreadable gif file"),
])
def test_bombs_are_refused_before_decoding(name, message):
    with pytest.raises(PermanentError, match=message):
        imaging.probe(corpus(name), MAX_PIXELS)


def test_pixel_limit_applies_to_heic_too():
    with pytest.raises(PermanentError, match="heic of 3024x4032 pixels is over MAX_SOURCE_PIXELS=1000000"):
        imaging.probe(corpus("iphone-grid-p3.heic"), 1_000_000)


def test_truncated_jpeg_fails_instead_of_publishing_grey():
    probed = imaging.probe(corpus("truncated.jpg"), MAX_PIXELS)
    with pytest.raises(PermanentError, match="corrupt or truncated jpeg: the file ends before its end-of-image marker"):
        imaging.render(corpus("truncated.jpg"), probed, options.Recipe())


# -- animation --------------------------------------------------------------------

def test_animation_frames_within_the_limits():
    probed = imaging.probe(corpus("animated.gif"), MAX_PIXELS)  # 30 frames of 80x80
    assert frames_to_decode(probed, options.InputOptions()) == 30
    assert frames_to_decode(probed, options.InputOptions(max_animation_frames=29)) == 1
    assert frames_to_decode(probed, options.InputOptions(max_pixels=80 * 80 * 29)) == 1  # all frames too many pixels


def test_too_long_animation_is_published_as_its_first_frame():
    recipe = options.Recipe(input=options.InputOptions(max_animation_frames=5),
                            output=options.OutputOptions(formats=("webp", "avif")))
    probed = imaging.probe(corpus("animated.webp"), MAX_PIXELS)
    rendition = imaging.render(corpus("animated.webp"), probed, recipe)
    assert rendition.frames == 1
    assert {v.format for v in rendition.variants} == {"webp", "avif"}  # a still image: AVIF too
    first = pyvips.Image.new_from_file(corpus("animated.webp"))  # page 0
    for v in rendition.variants:
        image = pyvips.Image.new_from_buffer(v.data, "", n=-1)
        assert not image.get_typeof("n-pages") or image.get("n-pages") == 1
        assert (image.width, image.height) == (80, 80)
        # compared as shown on white (the colour under transparent pixels is arbitrary)
        shown, expected = image.flatten(background=255), first.flatten(background=255)
        assert (shown.cast("float") - expected.cast("float")).abs().avg() < 8


def test_animation_is_kept_in_webp_and_skipped_in_avif():
    recipe = options.Recipe(output=options.OutputOptions(formats=("webp", "avif")))
    rendition = imaging.render(corpus("animated.gif"), imaging.probe(corpus("animated.gif"), MAX_PIXELS), recipe)
    assert rendition.frames == 30 and {v.format for v in rendition.variants} == {"webp"}
    assert all(v.frames == 30 for v in rendition.variants)


# -- sizes, placeholder, dominant colour ----------------------------------------------

def test_fit_never_upscales_and_rounds_from_the_original():
    assert resize.fit(2000, 1072, 400) == (400, 214)
    assert resize.fit(1072, 2000, 1600) == (858, 1600)
    assert resize.fit(100, 50, 400) == (100, 50)
    assert resize.fit(10000, 1, 400) == (400, 1)


def test_smaller_variants_have_the_size_fitted_from_the_original():
    rendition = imaging.render(corpus("adobe-rgb.jpg"), imaging.probe(corpus("adobe-rgb.jpg"), MAX_PIXELS),
                               options.Recipe())
    assert {v.name: (v.width, v.height) for v in rendition.variants} == {"display": (1600, 858), "thumb": (400, 214)}


def test_dominant_colour_ignores_transparent_pixels():
    red = pyvips.Image.black(40, 40).new_from_image([255, 0, 0]).copy(interpretation="srgb")
    assert placeholder.dominant_colour(red) == "#ff0000"
    # a quarter is opaque blue, the rest transparent green: blue dominates
    quarter = pyvips.Image.black(40, 40).draw_rect(255, 0, 0, 20, 20, fill=True)
    red, green, blue, alpha = quarter * 0, 255 - quarter, quarter, quarter
    image = red.bandjoin([green, blue, alpha]).cast("uchar").copy(interpretation="srgb")
    assert placeholder.dominant_colour(image) == "#0000ff"


def test_placeholder_is_a_tiny_inline_webp():
    rendition = imaging.render(corpus("exif-orientation-1.jpg"),
                               imaging.probe(corpus("exif-orientation-1.jpg"), MAX_PIXELS), options.Recipe())
    prefix = "data:image/webp;base64,"
    assert rendition.placeholder.startswith(prefix) and len(rendition.placeholder) < 400
    tiny = pyvips.Image.new_from_buffer(base64.b64decode(rendition.placeholder[len(prefix):]), "")
    assert (tiny.width, tiny.height) == (16, 11)
    assert rendition.dominant_color.startswith("#")


def test_ten_bit_heic_is_decoded_at_16_bits_and_scaled_to_8(tmp_path):
    import struct

    import pillow_heif

    width, height = 64, 48  # red ramps 0..max across, green at half, blue 0
    pixels = b"".join(struct.pack("<HHH", 65535 * x // (width - 1), 32768, 0)
                      for _ in range(height) for x in range(width))
    path = str(tmp_path / "ten-bit.heic")
    pillow_heif.from_bytes(mode="RGB;16", size=(width, height), data=pixels).save(path, quality=90)
    assert pillow_heif.open_heif(path).info["bit_depth"] == 10

    rendition = imaging.render(path, imaging.probe(path, MAX_PIXELS), options.Recipe())
    image = pyvips.Image.new_from_buffer(rendition.variants[0].data, "")
    left, middle, right = (image.getpoint(x, height // 2) for x in (0, width // 2, width - 1))
    assert left[0] < 8 and right[0] > 245 and 120 < middle[0] < 136  # the ramp, not clipped to white
    assert all(120 < p[1] < 136 for p in (left, middle, right))


def test_render_has_one_signature_taking_a_recipe():
    # One way to call it: the actor, bench/ and the tests all pass a Recipe.
    import inspect

    assert list(inspect.signature(imaging.render).parameters) == ["path", "probed", "recipe"]


def test_libvips_error_lines_about_other_files_are_dropped():
    from publisher.imaging.input import vips_error

    class Error:  # libvips' error buffer is per process: another thread's lines can be in it
        detail = ("VipsJpeg: premature end of JPEG image\n/scratch/7/source: bad seek to 1372\n"
                  "/scratch/9/source: jpegload: load error\n")
        message = "unable to call thumbnail"

    assert vips_error(Error(), "/scratch/9/source") == "VipsJpeg: premature end of JPEG image; jpegload: load error"


# -- re-publish pacing (the SQL side is tested end to end in tests/system/test_republish.py) ----

def test_republish_never_exceeds_the_rate_or_the_active_limit(monkeypatch):
    import contextlib

    from publisher.jobs.store import actions as queries
    from publisher.ops import republish

    state = {"stale": 23, "active": 0, "most_active": 0}
    rounds = [0]  # jobs created in each one-second round

    class Db:
        @contextlib.contextmanager
        def transaction(self):
            yield None

    def request(cur, recipe, limit):
        made = min(limit, state["stale"])
        state["stale"] -= made
        state["active"] += made
        state["most_active"] = max(state["most_active"], state["active"])
        rounds[-1] += made
        return made

    def sleep(seconds):  # a second passes: the workers finish two jobs
        state["active"] = max(0, state["active"] - 2)
        rounds.append(0)

    monkeypatch.setattr(queries, "count_stale", lambda cur, recipe: state["stale"])
    monkeypatch.setattr(queries, "count_active_republish", lambda cur: state["active"])
    monkeypatch.setattr(queries, "request_republish", request)
    monkeypatch.setattr(queries, "republish_mismatches", lambda cur, recipe: [])
    total = republish.republish(Db(), "abc", rate=3, max_active=4, sleep=sleep, log=lambda *_: None)
    assert total == 23 and state["stale"] == 0 and state["active"] == 0
    assert max(rounds) <= 3  # --rate per second
    assert state["most_active"] <= 4  # --max-active


def test_republish_stops_when_the_workers_make_another_recipe(monkeypatch):
    import contextlib

    from publisher.jobs.store import actions as queries
    from publisher.ops import republish

    class Db:
        @contextlib.contextmanager
        def transaction(self):
            yield None

    monkeypatch.setattr(queries, "count_stale", lambda cur, recipe: 0)
    monkeypatch.setattr(queries, "count_active_republish", lambda cur: 0)
    monkeypatch.setattr(queries, "republish_mismatches", lambda cur, recipe: [{"file_id": "f", "recipe": "old"}])
    with pytest.raises(republish.RecipeMismatch, match="workers made recipe old, not new"):
        republish.republish(Db(), "new", rate=1, max_active=1, sleep=lambda s: None, log=lambda *_: None)


def test_truncation_is_told_from_the_missing_end_of_each_format(tmp_path):
    from publisher.imaging.input import truncation

    for name, fmt in (("exif-orientation-1.jpg", "jpeg"), ("png-alpha.png", "png")):
        data = (CORPUS / name).read_bytes()
        assert truncation(corpus(name), fmt) is None
        cut = tmp_path / name
        cut.write_bytes(data[: len(data) * 2 // 3])
        assert truncation(str(cut), fmt).startswith("the file ends before its"), name
    assert truncation(corpus("truncated.jpg"), "jpeg") == "the file ends before its end-of-image marker"


def test_cmyk_jpeg_with_an_embedded_profile_is_converted_through_it(tmp_path):
    """The corpus has CMYK without a profile only; this one carries its CMYK profile
    (libvips' built-in press profile, embedded by icc_export). Reference: LittleCMS
    through Pillow's ImageCms, from the same embedded profile. (The fallback for CMYK
    without a profile is that same press profile: this checks the conversion is right,
    not which of the two was read.)"""
    import io

    from PIL import Image, ImageCms, ImageStat

    patches = [(0, 0, 0), (255, 255, 255), (200, 30, 40), (30, 160, 60), (40, 70, 190), (128, 128, 128)]
    tiles = [(pyvips.Image.black(100, 100) + list(rgb)).cast("uchar") for rgb in patches]
    srgb = pyvips.Image.arrayjoin(tiles, across=len(tiles)).copy(interpretation="srgb")
    path = str(tmp_path / "cmyk-icc.jpg")
    srgb.icc_export(output_profile="cmyk", intent="perceptual").jpegsave(path, Q=95, keep="icc")

    probed = imaging.probe(path, 10_000_000)
    assert probed.interpretation == "cmyk"
    display = next(v for v in imaging.render(path, probed, options.Recipe()).variants if v.name == "display")
    out = pyvips.Image.new_from_buffer(display.data, "")
    assert out.bands == 3 and (out.width, out.height) == (600, 100)

    source = Image.open(path)
    profile = ImageCms.ImageCmsProfile(io.BytesIO(source.info["icc_profile"]))
    reference = ImageCms.profileToProfile(source, profile, ImageCms.createProfile("sRGB"),
                                          renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB")
    for i in range(len(patches)):
        box = (i * 100 + 30, 30, i * 100 + 70, 70)
        want = ImageStat.Stat(reference.crop(box)).mean
        got = [out.crop(box[0], 30, 40, 40)[band].avg() for band in range(3)]
        assert max(abs(g - w) for g, w in zip(got, want)) < 6, (patches[i], got, want)
    assert out.crop(30, 30, 40, 40).avg() < 30  # black stays black


# -- how libvips runs in a worker process ----------------------------------------

@pytest.mark.parametrize("environment, expected", [({}, "1 0"), ({"VIPS_CONCURRENCY": "2"}, "2 0"),
                                                    ({"VIPS_CONCURRENCY": "lots"}, "1 0")])
def test_a_worker_process_runs_libvips_with_one_thread_per_image_unless_told_otherwise(environment, expected):
    # In a fresh process, as a worker starts: the stages set libvips up when they load.
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("VIPS_CONCURRENCY", "MALLOC_ARENA_MAX")}
    code = ("import pyvips; from publisher.imaging import input; "
            "print(pyvips.concurrency_get(), pyvips.cache_get_max())")
    done = subprocess.run([sys.executable, "-c", code], env={**env, **environment},
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == expected.split()

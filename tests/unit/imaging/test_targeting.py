"""The quality target (VARIANT_QUALITY): each variant encoded at the quality whose SSIMULACRA2 score
lands within the tolerance of its target, a fixed quality as before, and the recipe that follows
the setting. Real encodes and scores of test-corpus images, at the thumb's size (fast)."""

import hashlib

import pytest
import pyvips

from publisher import imaging
from publisher.imaging import options, output, quality, resize, targeting
from publisher.imaging.options import TOLERANCE, parse_quality
from publisher.settings.job import ConfigError, load_settings
from tests.conftest import CORPUS
from tests.unit.settings.test_job_settings import VALID

THUMB_ONLY = options.ResizeOptions((("thumb", 400),))


def render(name: str, quality_: str = "auto", resize_options=THUMB_ONLY, formats=("webp",)) -> imaging.Rendition:
    recipe = options.Recipe(resize=resize_options,
                            output=options.OutputOptions(formats, parse_quality(quality_)))
    path = str(CORPUS / name)  # (an absolute path stays as it is)
    return imaging.render(path, imaging.probe(path, options.DEFAULT_MAX_SOURCE_PIXELS), recipe)


def rescore(name: str, variant: imaging.Variant) -> float:
    """The published bytes scored again against the variant made afresh."""
    return quality.score(_thumb(name), pyvips.Image.new_from_buffer(variant.data, ""))


# -- the search, on real images ---------------------------------------------------------

def test_a_busy_photo_gets_a_higher_quality_than_a_plain_one_at_the_same_target():
    # the nebula: dark, grainy, stars everywhere; the note: a few strokes on white
    busy, = render("prophoto.jpg").variants
    plain, = render("png-alpha.png").variants
    assert busy.target == plain.target == options.AUTO_TARGETS[0][2]
    assert busy.quality > 80 > plain.quality
    assert abs(busy.score - busy.target) <= TOLERANCE and busy.bound is None
    # a plain page looks the same at any quality: the lowest is taken, and that is recorded
    assert (plain.quality, plain.bound) == (options.QUALITY_RANGES["webp"][0], "lowest")
    assert plain.score > plain.target
    assert len(plain.data) < len(output.encode(_thumb("png-alpha.png"), "webp", 80))


@pytest.mark.parametrize("name", ["exif-orientation-1.jpg", "prophoto.jpg", "large-photo-12mp.jpg"])
@pytest.mark.parametrize("target", [70.0, 76.0])
def test_the_score_lands_within_the_tolerance_of_the_target(name, target):
    variant, = render(name, f"thumb:{target:g}").variants
    assert variant.target == target
    assert abs(variant.score - target) <= TOLERANCE, (variant.quality, variant.score)
    assert variant.bound is None
    assert abs(rescore(name, variant) - variant.score) < 0.01  # the score is of the bytes published


def test_where_the_range_cannot_reach_the_target_its_end_is_taken_and_said():
    # concrete, grain on grain: even the highest quality stays below a target of 90 here
    variant, = render("adobe-rgb.jpg", "thumb:90").variants
    assert (variant.quality, variant.bound) == (options.QUALITY_RANGES["webp"][1], "highest")
    assert variant.score < 90 - TOLERANCE


def test_a_variant_too_small_to_score_takes_the_typical_quality_and_says_so(tmp_path):
    # a banner whose thumb is 400x3: SSIMULACRA2 needs 8 pixels a side
    banner = pyvips.Image.xyz(1600, 12).extract_band(0).cast("uchar").bandjoin([128, 64])
    banner.copy(interpretation="srgb").pngsave(str(tmp_path / "banner.png"))
    variant, = render(str(tmp_path / "banner.png")).variants
    assert (variant.width, variant.height) == (400, 3)
    assert (variant.bound, variant.score, variant.target) == ("too_small", None, options.AUTO_TARGETS[0][2])
    low, high = options.QUALITY_RANGES["webp"]
    assert variant.quality == min(max(round(targeting.typical_quality("webp", variant.target)), low), high)
    assert pyvips.Image.new_from_buffer(variant.data, "").width == 400
    with pytest.raises(ValueError, match="too small to score"):
        quality.score(banner.crop(0, 0, 400, 3), banner.crop(0, 0, 400, 3))


def test_the_same_source_and_recipe_give_the_same_bytes():
    first, second = render("exif-orientation-1.jpg"), render("exif-orientation-1.jpg")
    assert [v.data for v in first.variants] == [v.data for v in second.variants]


@pytest.mark.parametrize("name", ["animated.gif", "animated.webp"])
def test_an_animation_is_searched_on_its_first_frame_and_stays_animated(name):
    animation, = render(name, "thumb:60").variants
    assert animation.frames > 1 and abs(animation.score - 60) <= TOLERANCE
    decoded = pyvips.Image.new_from_buffer(animation.data, "", n=-1)
    assert decoded.get("n-pages") > 1
    # the score recorded is the first frame's as published
    first = pyvips.Image.new_from_file(str(CORPUS / name))
    assert abs(quality.score(first, decoded.crop(0, 0, 80, 80)) - animation.score) < 0.01


def test_every_format_is_searched_avif_from_what_webp_found():
    webp, avif = render("exif-orientation-1.jpg", formats=("webp", "avif")).variants
    assert (webp.format, avif.format) == ("webp", "avif")
    for v in (webp, avif):
        assert abs(v.score - v.target) <= TOLERANCE or v.bound, (v.format, v.quality, v.score)
    lo, hi = options.QUALITY_RANGES["avif"]
    assert lo <= avif.quality <= hi


# -- a fixed quality, as before -----------------------------------------------------------

def test_a_fixed_quality_encodes_webp_at_that_quality_as_before():
    thumb, = render("exif-orientation-1.jpg", "q80").variants
    assert thumb.data == output.encode(_thumb("exif-orientation-1.jpg"), "webp", 80)
    assert thumb.data == _thumb("exif-orientation-1.jpg").webpsave_buffer(Q=80, effort=output.WEBP_EFFORT, keep="none")
    assert (thumb.quality, thumb.score, thumb.target, thumb.bound) == (80, None, None, None)
    assert options.QualityOptions(fixed=80).fixed_quality("avif") == 50  # AVIF's, as before


def _thumb(name: str) -> pyvips.Image:
    """The thumb as the pipeline makes it (the largest variant, here the only one)."""
    from publisher.imaging import colour
    from publisher.imaging.input import open_source

    path = str(CORPUS / name)
    probed = imaging.probe(path, options.DEFAULT_MAX_SOURCE_PIXELS)
    source = open_source(path, probed, options.InputOptions())
    image = resize.first_variant(source, 400, colour.conversion_options(probed.interpretation))
    return colour.to_srgb8(image).copy_memory()


# -- the search's steps, on a model image ----------------------------------------------------

def model(curve, probed=None):
    """A probe function on a synthetic curve quality -> score, recording the qualities probed."""
    def probe_at(q):
        if probed is not None:
            probed.append(q)
        return targeting.Probe(q, curve(q), b"%d" % q)

    return probe_at


def test_a_typical_image_is_found_with_one_probe():
    probed = []
    found = targeting.search(model(lambda q: targeting.typical_score("webp", q), probed), "webp", 72.0, 0.0)
    assert len(probed) == 1 and abs(found.score - 72) <= TOLERANCE


def test_an_image_far_from_the_typical_curve_is_found_in_a_few_probes():
    for shift in (-10, -5, 5, 8):
        probed = []
        found = targeting.search(model(lambda q, s=shift: targeting.typical_score("webp", q) + s, probed),
                                 "webp", 72.0, 0.0)
        assert abs(found.score - 72) <= TOLERANCE and len(probed) <= 3, (shift, probed)
        assert found.data == b"%d" % found.quality


def test_a_target_between_two_neighbouring_qualities_takes_the_one_above_it():
    found = targeting.search(model(lambda q: 60.0 if q < 75 else 90.0), "webp", 72.0, 0.0)
    assert (found.quality, found.score, found.bound) == (75, 90.0, "between")


@pytest.mark.parametrize("curve, quality_, bound", [(lambda q: 40.0 + q / 10, 95, "highest"),
                                                    (lambda q: 99.0, 40, "lowest")])
def test_the_end_of_the_range_is_taken_and_said_when_the_target_is_out_of_reach(curve, quality_, bound):
    found = targeting.search(model(curve), "webp", 72.0, 0.0)
    assert (found.quality, found.bound) == (quality_, bound)


# -- the setting, and the recipe that follows it ---------------------------------------------

def test_the_setting_is_auto_targets_per_variant_or_a_fixed_quality():
    assert parse_quality("auto") == options.QualityOptions()
    assert parse_quality("q80") == parse_quality("Q80") == options.QualityOptions(fixed=80)
    named = parse_quality("thumb:78, display:70.5")
    assert named.target("thumb", 400) == 78.0 and named.target("display", 1600) == 70.5
    # a variant not named keeps auto's target: that of the default variant nearest its size
    assert named.target("zoom", 3000) == options.QualityOptions().target("display", 1600)
    assert options.QualityOptions().target("small", 300) == options.QualityOptions().target("thumb", 400)
    for bad in ("q0", "q101", "thumb", "thumb:high", "thumb:20", "thumb:70,thumb:72", "fast"):
        with pytest.raises(ValueError):
            parse_quality(bad)


def test_a_target_for_a_variant_that_is_not_made_is_refused_by_name():
    assert load_settings({**VALID, "VARIANT_QUALITY": "thumb:78"}).variant_quality.target("thumb", 400) == 78
    with pytest.raises(ConfigError, match="VARIANT_QUALITY: names zoom, which VARIANTS does not make"):
        load_settings({**VALID, "VARIANT_QUALITY": "zoom:78"})
    with pytest.raises(ConfigError, match="VARIANT_QUALITY"):
        load_settings({**VALID, "VARIANT_QUALITY": "best"})


def test_the_search_names_its_version_and_a_change_to_what_decides_the_qualities_bumps_it():
    """If this fails, the search or the metric now chooses other qualities than TARGETING_VERSION
    names: bump it (the recipes of searched qualities change, and republish picks them up), then pin
    the new fingerprint here."""
    from publisher.imaging.quality import layout, ssimulacra2

    decides = (targeting.TYPICAL, targeting.SIZE_OFFSET, targeting.MAX_PROBES, options.TOLERANCE,
               options.QUALITY_RANGES, options.AVIF_SEARCH_EFFORT, ssimulacra2.WEIGHTS, ssimulacra2.OPSIN,
               layout.SAMPLE_ABOVE, layout.SAMPLED_PIXELS, layout.BLOCK, layout.STRIPS, layout.STRIP)
    fingerprint = hashlib.sha256(repr(decides).encode()).hexdigest()[:12]
    assert (options.TARGETING_VERSION, fingerprint) == (1, "3c868b4684d3")


def test_the_recipe_version_changes_with_the_target():
    decoders = {"libvips": "8.18.7", "pillow_heif": "1.8.1"}

    def version(spec: str) -> str:
        return options.Recipe(output=options.OutputOptions(quality=parse_quality(spec))).version(decoders)

    versions = {spec: version(spec) for spec in ("auto", "thumb:78", "display:74", "q80", "q81")}
    assert len(set(versions.values())) == len(versions)
    # the default is a fixed q80 whose recipe versions are those the releases before targets wrote
    # (WebP alone; WebP and AVIF): an upgrade republishes nothing
    assert options.Recipe().version(decoders) == version("q80") == "ea9906e4e4e0"
    both = options.OutputOptions(("webp", "avif"))
    assert options.Recipe(output=both).version(decoders) == "8357ced86e76"
    # naming auto's own targets is auto
    targets = ",".join(f"{name}:{target:g}" for name, _, target in options.AUTO_TARGETS)
    assert version(targets) == version("auto")
    # a fixed q80 describes the qualities as a fixed recipe always did
    assert options.Recipe(output=options.OutputOptions(quality=parse_quality("q80"))).describe(decoders)[
        "quality"] == {"webp": 80}

"""A refused or broken source is raised with the reason the failure metrics count
(publisher/telemetry.py), given where the imaging finds it, not read back from its message."""

import pytest

from publisher import imaging
from publisher.errors import PermanentError
from publisher.imaging import options
from tests.conftest import CORPUS


def test_a_page_that_is_not_an_image_is_refused_as_not_an_image(tmp_path):
    page = tmp_path / "lot-7.jpg"
    page.write_bytes(b"<!doctype html><html><body>Not found</body></html>")
    with pytest.raises(PermanentError) as refused:
        imaging.probe(str(page), options.DEFAULT_MAX_SOURCE_PIXELS)
    assert refused.value.reason == "not_an_image"


def test_a_source_over_the_pixel_limit_is_refused_as_too_many_pixels():
    with pytest.raises(PermanentError) as refused:
        imaging.probe(str(CORPUS / "large-photo-12mp.jpg"), 1_000_000)
    assert refused.value.reason == "too_many_pixels"


def test_a_truncated_source_fails_as_a_corrupt_image():
    path = str(CORPUS / "truncated.jpg")
    with pytest.raises(PermanentError) as failed:
        probed = imaging.probe(path, options.DEFAULT_MAX_SOURCE_PIXELS)
        imaging.render(path, probed, options.Recipe(resize=options.ResizeOptions((("thumb", 100),))))
    assert failed.value.reason == "corrupt_image"

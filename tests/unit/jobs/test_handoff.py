"""What the steps hand each other: what fetch and variant return is what upload
reads back from the job's artifacts, through JSON as the database stores it."""

import json

from publisher.jobs import handoff
from publisher.jobs.handoff import Artifacts, Fetched, ImagingFacts, Rendered, Source, StagedFile

SOURCE = Source(file="source", bytes=2_000_000, format="jpeg", width=1800, height=1200)
THUMB_WEBP = StagedFile(file="thumb.webp", width=400, height=267, bytes=12_000, sha256="ab" * 32)
THUMB_AVIF = StagedFile(file="thumb.avif", width=400, height=267, bytes=9_000, sha256="cd" * 32)
FACTS = ImagingFacts(recipe="r1", placeholder="data:image/webp;base64,AAAA", dominant_color="#102030")


def _merged(*results) -> dict:
    """The artifacts jsonb after each step's result was merged in (publisher_pass_step's ||)."""
    artifacts = {}
    for result in results:
        artifacts.update(json.loads(json.dumps(handoff.to_json(result))))
    return artifacts


def test_upload_reads_back_exactly_what_fetch_and_variant_handed_over():
    fetched = Fetched(SOURCE)
    rendered = Rendered({"thumb": {"webp": THUMB_WEBP, "avif": THUMB_AVIF}}, FACTS)
    assert Artifacts.from_json(_merged(fetched, rendered)) == Artifacts(SOURCE, rendered.variants, FACTS)


def test_variant_reads_the_source_before_any_variant_exists():
    artifacts = Artifacts.from_json(_merged(Fetched(SOURCE)))
    assert (artifacts.source, artifacts.variants, artifacts.imaging) == (SOURCE, None, None)


def test_the_bytes_a_step_moved_are_counted_in_and_out():
    assert Fetched(SOURCE).traffic() == {"in": 2_000_000}
    assert Rendered({"thumb": {"webp": THUMB_WEBP, "avif": THUMB_AVIF}}, FACTS).traffic() == {"out": 21_000}


def test_a_step_without_a_result_merges_nothing():
    assert handoff.to_json(None) is None


def test_artifacts_read_back_malformed_fail_the_job_as_bad_artifacts():
    import pytest

    from publisher.errors import PermanentError
    from publisher.telemetry import failure_reason

    good = _merged(Fetched(SOURCE), Rendered({"thumb": {"webp": THUMB_WEBP}}, FACTS))
    for broken in ({**good, "variants": ["thumb.webp"]},
                   {**good, "source": {**good["source"], "file": ["source"]}},
                   {**good, "variants": {"thumb": {"webp": {**good["variants"]["thumb"]["webp"], "bytes": "12"}}}},
                   {**good, "imaging": None},
                   {**good, "source": {"file": "source"}}):
        with pytest.raises(PermanentError) as e:
            Artifacts.from_json(broken)
        assert failure_reason(e.value) == "bad_artifacts"


def test_fields_a_step_no_longer_hands_over_are_ignored_not_trusted():
    artifacts = _merged(Fetched(SOURCE), Rendered({"thumb": {"webp": THUMB_WEBP}}, FACTS))
    artifacts["variants"]["thumb"]["webp"]["content_type"] = "text/html"
    assert Artifacts.from_json(artifacts).variants["thumb"]["webp"] == THUMB_WEBP

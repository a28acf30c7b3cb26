"""Every object the upload step PUTs, tracked in SQL until it is published or
removed: the keys a file's variants no longer name are superseded; the objects of
jobs that failed or were cancelled come due after the grace period, never those
of an active job or a published file; no shape of variants makes the file's
UPDATE fail; a worker can track only keys of its own attempt's file."""

import json

import psycopg2
import pytest

from tests.support.job_sql import begin, claimed_job, fail, new_file, one, rows, run_to_upload


def set_variants(cur, file_id, variants):
    cur.execute("UPDATE auction_files SET variants = %s WHERE id = %s", (json.dumps(variants), file_id))


def unpublished(cur):
    return sorted(r["key"] for r in rows(cur, "SELECT key FROM publisher_objects WHERE state <> 'published'"))


def due(cur, grace="7 days"):
    """What maintenance would take now (in a transaction rolled back: nothing is taken)."""
    cur.execute("BEGIN")
    try:
        return sorted(r["key"] for r in rows(cur, "SELECT key FROM publisher_take_unpublished_objects(%s, 100)",
                                             grace))
    finally:
        cur.execute("ROLLBACK")


def the_grace_passes(cur):
    cur.execute("UPDATE publisher_objects SET since = since - interval '8 days'")


def test_the_keys_a_file_no_longer_names_are_superseded_and_named_again_are_not(cur):
    file_id = new_file(cur)
    a, a_avif, b = (f"m/{file_id}/thumb-a.webp", f"m/{file_id}/thumb-a.avif", f"m/{file_id}/thumb-b.webp")
    first = {"thumb": {"key": a, "formats": {"webp": {"key": a}, "avif": {"key": a_avif}}}}
    second = {"thumb": {"key": b, "formats": {"webp": {"key": b}}}}
    set_variants(cur, file_id, first)
    assert unpublished(cur) == []
    set_variants(cur, file_id, second)
    assert unpublished(cur) == sorted([a, a_avif])
    set_variants(cur, file_id, first)  # the first bytes published again: current, so not removed
    assert unpublished(cur) == [b]
    the_grace_passes(cur)
    assert due(cur) == [b]
    assert due(cur, "9 days") == []


def _uploading(cur, names=("thumb",)):
    """A job in its upload step that tracked (about to PUT) one key per name."""
    job, token = claimed_job(cur)
    run_to_upload(cur, job, token)
    file_id = one(cur, "SELECT file_id::text FROM publish_jobs WHERE id = %s", job)
    keys = [f"media/{file_id}/{name}-0123.webp" for name in names]
    for key in keys:
        one(cur, "SELECT publisher_track_object(%s, %s, %s)", job, token, key)
    return job, token, keys


@pytest.mark.parametrize("ending", ["failed", "cancelled"])
def test_the_objects_of_a_job_that_failed_or_was_cancelled_come_due_after_the_grace(cur, ending):
    job, token, keys = _uploading(cur)
    the_grace_passes(cur)
    assert due(cur) == []  # its job is still running: its upload may PUT them yet
    if ending == "failed":
        fail(cur, job, token, "S3 said no", True)
    else:  # the upload failed transiently; waiting for its retry, an operator cancelled it
        assert fail(cur, job, token, "S3 answered 503", False) == "retry"
        assert one(cur, "SELECT changed FROM publisher_admin_cancel(%s)", job) is True
    assert due(cur) == keys


def test_a_published_key_never_comes_due_whatever_the_grace(cur):
    job, token, keys = _uploading(cur)
    assert one(cur, "SELECT publisher_finalize(%s, %s, %s, 10, 10)", job, token,
               json.dumps({"thumb": {"key": keys[0], "formats": {"webp": {"key": keys[0]}}}})) == "completed"
    the_grace_passes(cur)
    for grace in ("-1 day", "0", None):
        assert due(cur, grace) == []
    assert rows(cur, "SELECT state FROM publisher_objects") == [{"state": "published"}]


def test_an_attempt_tracks_only_keys_of_its_own_file_and_only_while_it_runs_the_upload(cur):
    job, token, _ = _uploading(cur)
    other = new_file(cur)
    with pytest.raises(psycopg2.errors.InvalidParameterValue):
        one(cur, "SELECT publisher_track_object(%s, %s, %s)", job, token, f"media/{other}/thumb-1.webp")
    stale, stale_token = claimed_job(cur)
    assert begin(cur, stale, stale_token, "fetch") == "run"  # fetching: no upload to track for
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        one(cur, "SELECT publisher_track_object(%s, %s, %s)", stale, stale_token, f"media/{other}/thumb-1.webp")


@pytest.mark.parametrize("key", [
    "media/{file}/../{other}/thumb-1.webp",  # climbs out of the folder
    "media/x{file}/thumb-1.webp",            # not the file's folder, one that ends in its id
    "media/{other}/{file}/thumb-1.webp",     # the file's folder inside another file's
    "/{file}/thumb-1.webp", "media//{file}/thumb-1.webp", "media/./{file}/thumb-1.webp",
    "media/{file}/sub/thumb-1.webp", "media/{file}/",
])
def test_a_key_is_tracked_only_as_a_plain_name_right_in_the_files_folder_after_a_plain_prefix(cur, key):
    job, token, _ = _uploading(cur)
    file_id = one(cur, "SELECT file_id::text FROM publish_jobs WHERE id = %s", job)
    other = new_file(cur)
    with pytest.raises(psycopg2.errors.InvalidParameterValue):
        one(cur, "SELECT publisher_track_object(%s, %s, %s)", job, token, key.format(file=file_id, other=other))
    for fine in (f"{file_id}/thumb-1.webp", f"cdn/media.v2/{file_id}/thumb_1-ab.avif"):
        one(cur, "SELECT publisher_track_object(%s, %s, %s)", job, token, fine)


def test_a_key_outside_the_files_folder_that_its_variants_once_named_is_never_handed_out_for_removal(cur):
    """Variants written by hand (or by an earlier release) may name an object that is not
    the file's: another file's, or a shared one. Superseded, it is forgotten, not removed."""
    file_id, other = new_file(cur), new_file(cur, "other.jpg")
    own = f"media/{file_id}/thumb-a.webp"
    foreign = ["shared/logo.webp", f"media/{other}/../{file_id}/x.webp", f"media/x{file_id}/y.webp"]
    set_variants(cur, file_id, {"thumb": {"key": own, "formats": {f"f{i}": {"key": k} for i, k in enumerate(foreign)}}})
    set_variants(cur, file_id, {})
    the_grace_passes(cur)
    assert due(cur) == [own]


def test_variants_of_any_shape_can_still_be_written(cur):
    file_id = new_file(cur)
    for variants in ({"thumb": {"url": "u"}}, {"thumb": 3, "note": "x"}, {"thumb": {"key": 7}}, [], {}, None):
        set_variants(cur, file_id, variants)
    assert one(cur, "SELECT variants FROM auction_files WHERE id = %s", file_id) is None
    assert unpublished(cur) == []

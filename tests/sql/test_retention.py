"""What a republish supersedes, in SQL: the keys a file's variants no longer name
are recorded for removal after the grace period; no shape of variants makes the
file's UPDATE fail."""

import json

from tests.support.job_sql import new_file, one, rows


def set_variants(cur, file_id, variants):
    cur.execute("UPDATE auction_files SET variants = %s WHERE id = %s", (json.dumps(variants), file_id))


def superseded(cur):
    return sorted(r["key"] for r in rows(cur, "SELECT key FROM publisher_superseded_objects"))


def test_the_keys_a_file_no_longer_names_are_superseded_and_named_again_are_not(cur):
    file_id = new_file(cur)
    first = {"thumb": {"key": "m/f/thumb-a.webp", "formats": {"webp": {"key": "m/f/thumb-a.webp"},
                                                              "avif": {"key": "m/f/thumb-a.avif"}}}}
    second = {"thumb": {"key": "m/f/thumb-b.webp", "formats": {"webp": {"key": "m/f/thumb-b.webp"}}}}
    set_variants(cur, file_id, first)
    assert superseded(cur) == []
    set_variants(cur, file_id, second)
    assert superseded(cur) == ["m/f/thumb-a.avif", "m/f/thumb-a.webp"]
    set_variants(cur, file_id, first)  # the first bytes published again: current, so not removed
    assert superseded(cur) == ["m/f/thumb-b.webp"]
    cur.execute("UPDATE publisher_superseded_objects SET superseded_at = now() - interval '8 days'")
    assert rows(cur, "SELECT key FROM publisher_superseded_due(interval '7 days', 10)") == [
        {"key": "m/f/thumb-b.webp"}]
    assert rows(cur, "SELECT key FROM publisher_superseded_due(interval '9 days', 10)") == []


def test_variants_of_any_shape_can_still_be_written(cur):
    file_id = new_file(cur)
    for variants in ({"thumb": {"url": "u"}}, {"thumb": 3, "note": "x"}, {"thumb": {"key": 7}}, [], {}, None):
        set_variants(cur, file_id, variants)
    assert one(cur, "SELECT variants FROM auction_files WHERE id = %s", file_id) is None
    assert superseded(cur) == []

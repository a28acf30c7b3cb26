"""The overview's latest publishes show each file's smallest published variant,
whatever VARIANTS names it (not a variant called 'thumb')."""

from psycopg2.extras import Json

from publisher.ops.overview import overview
from tests.support.job_sql import new_file


def _published(cur, raid_key, variants):
    file_id = new_file(cur, raid_key)
    cur.execute("UPDATE auction_files SET publish_status = 'published', published_at = now(), variants = %s "
                "WHERE id = %s", (Json(variants), file_id))
    return file_id


def test_the_latest_publishes_show_the_smallest_variant_whatever_its_name(cur):
    variants = {"large": {"url": "https://cdn.example/large.webp", "width": 1200},
                "tiny": {"url": "https://cdn.example/tiny.webp", "width": 160},
                "medium": {"url": "https://cdn.example/medium.webp", "width": 640}}
    file_id = _published(cur, "lot-7.jpg", variants)
    (shown,) = [p for p in overview(cur)["latest_publishes"] if p["file_id"] == file_id]
    assert shown["thumb_url"] == "https://cdn.example/tiny.webp"


def test_a_variant_whose_recorded_width_is_not_a_number_is_not_chosen(cur):
    variants = {"odd": {"url": "https://cdn.example/odd.webp", "width": "small"},
                "card": {"url": "https://cdn.example/card.webp", "width": 300}}
    file_id = _published(cur, "lot-8.jpg", variants)
    (shown,) = [p for p in overview(cur)["latest_publishes"] if p["file_id"] == file_id]
    assert shown["thumb_url"] == "https://cdn.example/card.webp"

"""sql/009_variants_formats.sql: files published before variants had several
formats get their "formats" once; every reader then reads one shape."""

import json
import subprocess

from publisher.ops.schema import SQL_DIR

MIGRATION = SQL_DIR / "009_variants_formats.sql"
LEGACY = {"thumb": {"url": "https://cdn/f/thumb-ab.webp", "key": "f/thumb-ab.webp", "bytes": 1200,
                    "width": 400, "height": 300}}
CURRENT = {"thumb": {**LEGACY["thumb"], "formats": {
    "webp": {"url": "https://cdn/f/thumb-ab.webp", "key": "f/thumb-ab.webp", "bytes": 1200,
             "content_type": "image/webp"},
    "avif": {"url": "https://cdn/f/thumb-cd.avif", "key": "f/thumb-cd.avif", "bytes": 900,
             "content_type": "image/avif"}}}}


def _run_migration(pg_server, url):
    subprocess.run([pg_server.psql, url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(MIGRATION)],
                   check=True, capture_output=True)


def _variants(conn, file_id):
    with conn.cursor() as cur:
        cur.execute("SELECT variants FROM auction_files WHERE id = %s", (file_id,))
        return cur.fetchone()[0]


def test_a_file_published_before_formats_gets_its_webp_under_formats_and_keeps_the_top_level(pg_server, schema_db):
    conn, url = schema_db
    with conn.cursor() as cur:
        cur.execute("INSERT INTO auction_files (raid_key, variants) VALUES ('old.jpg', %s) RETURNING id",
                    (json.dumps(LEGACY),))
        legacy = cur.fetchone()[0]
        cur.execute("INSERT INTO auction_files (raid_key, variants) VALUES ('new.jpg', %s) RETURNING id",
                    (json.dumps(CURRENT),))
        current = cur.fetchone()[0]
        cur.execute("INSERT INTO auction_files (raid_key) VALUES ('unpublished.jpg') RETURNING id")
        unpublished = cur.fetchone()[0]
    _run_migration(pg_server, url)
    migrated = _variants(conn, legacy)
    assert migrated["thumb"]["formats"] == {"webp": {"url": "https://cdn/f/thumb-ab.webp", "key": "f/thumb-ab.webp",
                                                     "bytes": 1200, "content_type": "image/webp"}}
    assert {k: migrated["thumb"][k] for k in LEGACY["thumb"]} == LEGACY["thumb"]
    assert _variants(conn, current) == CURRENT
    assert _variants(conn, unpublished) is None
    _run_migration(pg_server, url)  # re-runnable: a second run changes nothing
    assert _variants(conn, legacy) == migrated

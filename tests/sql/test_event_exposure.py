"""Any role that can connect may LISTEN on publish_events (PostgreSQL has no
privilege on channels): the readonly role hears every event. So a payload carries
only what docs/events.md lists, never an attempt token (with the worker role it
would act for the attempt), the host's scratch paths or the host's name."""

import json
import select
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg2

from devstack import postgres
from tests.support.job_sql import claimed_job, fail, file_of, finalize, one, run_to_upload

#: The fields docs/events.md documents; nothing else may travel.
DOCUMENTED = {"event_id", "type", "job_id", "file_id", "raid_key", "status", "at", "variants", "error", "truncated"}
VARIANTS = {"thumb": {"url": "https://cdn.test/media/f/thumb-1.webp", "key": "media/{file}/thumb-1.webp",
                      "width": 400, "height": 300, "bytes": 1234, "sha256": "ab" * 32,
                      "formats": {"webp": {"key": "media/{file}/thumb-1.webp", "bytes": 1234}}}}


def test_a_readonly_login_hears_every_event_and_no_event_carries_tokens_paths_or_hosts(pg_server, schema_db, cur):
    _, url = schema_db
    user = f"listens_{uuid.uuid4().hex[:8]}"
    postgres.query(pg_server.admin_url, f"CREATE ROLE {user} LOGIN IN ROLE publisher_readonly")
    parts = urlsplit(url)
    listener = psycopg2.connect(urlunsplit(parts._replace(netloc=f"{user}@{parts.netloc.rsplit('@', 1)[-1]}")))
    try:
        listener.autocommit = True
        listener.cursor().execute("LISTEN publish_events")
        tokens = []
        for ending in ("completed", "failed"):
            job_id, token = claimed_job(cur)
            tokens.append(token)
            run_to_upload(cur, job_id, token)
            one(cur, "UPDATE publish_jobs SET artifacts = %s WHERE id = %s",
                json.dumps({"source": {"file": "/var/lib/media-publisher/scratch/src.jpg"}}), job_id)
            if ending == "completed":
                finalize(cur, job_id, token, in_folder(VARIANTS, file_of(cur, job_id)["id"]))
            else:
                fail(cur, job_id, token, "decode: truncated", True)
        payloads = []
        while len(payloads) < 2 and select.select([listener], [], [], 5.0)[0]:
            listener.poll()
            payloads += [n.payload for n in listener.notifies]
            listener.notifies.clear()
        assert len(payloads) == 2, "the readonly login hears every event"
        for text in payloads:
            event = json.loads(text)
            assert set(event) <= DOCUMENTED, event
            assert not any(t in text for t in tokens)
            assert "scratch" not in text and "host-a" not in text
            assert "sha256" not in text and "key" not in json.dumps(event.get("variants", {}))
    finally:
        listener.close()
        postgres.query(pg_server.admin_url, f"DROP OWNED BY {user}; DROP ROLE {user}")


def in_folder(variants, file_id):
    """VARIANTS with each key in the file's folder, as the upload step names them."""
    return json.loads(json.dumps(variants).replace("media/{file}/", f"media/{file_id}/"))

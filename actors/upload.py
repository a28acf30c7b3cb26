"""Step 3: publish the variants under content-addressed keys and finalize the job."""

import logging

import dramatiq

from publisher import metrics, queries
from publisher.broker import queue_for
from publisher.errors import PermanentError
from publisher.runtime import worker_runtime
from publisher.storage import IMMUTABLE

logger = logging.getLogger("publisher.jobs")


@dramatiq.actor(queue_name=queue_for("upload"), priority=0, throws=(PermanentError,))
def upload(job_id: int, token: str) -> None:
    rt = worker_runtime()
    job = rt.load_job(job_id, token)
    artifacts = job["artifacts"]
    published = {}
    for name, formats in artifacts["variants"].items():
        if "staged_key" in formats:  # staged by a worker of the release before VARIANT_FORMATS
            formats = {formats["extension"]: formats}
        objects = {fmt: _publish(rt, job["file_id"], name, staged) for fmt, staged in formats.items()}
        webp = formats["webp"]
        # The webp object at the top level, as before (the contract); every format under "formats".
        published[name] = {
            **{k: objects["webp"][k] for k in ("url", "key", "bytes")},
            "width": webp["width"], "height": webp["height"], "frames": webp.get("frames", 1),
            "formats": objects,
        }
    source = artifacts["source"]
    imaging = artifacts.get("imaging") or {}
    with rt.db.transaction() as cur:
        owned = queries.finalize(cur, job_id, token, published, source["width"], source["height"])
        if owned and imaging:
            queries.record_imaging(cur, job_id, token, imaging["recipe"], imaging["placeholder"],
                                   imaging["dominant_color"])
    if not owned:
        logger.info("job=%s was finalized by another attempt; nothing changed", job_id)
        return
    try:
        rt.cleanup(job_id)
    except Exception as e:  # leftovers in staging are harmless; the job is published
        logger.warning("job=%s: staging cleanup failed: %s", job_id, rt.redact(str(e)))


def _publish(rt, file_id: str, name: str, staged: dict) -> dict:
    # The content hash in the key: a changed image gets a new URL, so the
    # CDN can cache forever and never serve a stale picture.
    key = f"{rt.settings.object_prefix}{file_id}/{name}-{staged['sha256'][:16]}.{staged['extension']}"
    if rt.storage.size_of(key) != staged["bytes"]:  # a re-run after a crash skips what is there
        data = rt.storage.get_bytes(staged["staged_key"])
        with metrics.phase("upload"):
            rt.storage.put_bytes(key, data, staged["content_type"], IMMUTABLE)
        if rt.storage.size_of(key) != len(data):
            raise RuntimeError(f"uploaded {key} but the bucket reports another size")
    return {"url": rt.storage.url(key), "key": key, "bytes": staged["bytes"],
            "content_type": staged["content_type"]}

"""Step 3: PUT each variant once under its content-addressed key, then finalize the job."""

import logging

import dramatiq

from publisher.observability import prometheus as metrics

from publisher.jobs import queries
from publisher.errors import PermanentError
from publisher.jobs.locality import QUEUE
from publisher.app.runtime import worker_runtime
from publisher.clients.storage import IMMUTABLE

logger = logging.getLogger("publisher.jobs")


@dramatiq.actor(queue_name=QUEUE, priority=0, throws=(PermanentError,))
def upload(job_id: int, token: str) -> None:
    rt = worker_runtime()
    job = rt.load_job(job_id, token)
    artifacts = job["artifacts"]
    published = {}
    for name, formats in artifacts["variants"].items():
        objects = {fmt: _publish(rt, job, token, name, fmt, written) for fmt, written in formats.items()}
        webp = formats["webp"]
        # The webp object at the top level, as before (the contract); every format under "formats".
        published[name] = {
            **{k: objects["webp"][k] for k in ("url", "key", "bytes")},
            "width": webp["width"], "height": webp["height"], "frames": webp.get("frames", 1),
            "formats": objects,
        }
    source = artifacts["source"]
    imaging = artifacts["imaging"]
    with rt.db.transaction() as cur:
        outcome = queries.finalize(cur, job_id, token, published, source["width"], source["height"])
        if outcome == "completed":
            queries.record_imaging(cur, job_id, token, imaging["recipe"], imaging["placeholder"],
                                   imaging["dominant_color"])
    if outcome == "stale":
        logger.info("job=%s was finalized by another attempt; nothing changed", job_id)
        return
    if outcome == "deleted":
        logger.warning("job=%s: the file was deleted while the job ran; not published", job_id)
    rt.scratch.remove(job_id, token)


def _publish(rt, job: dict, token: str, name: str, fmt: str, written: dict) -> dict:
    # The content hash in the key: a changed image gets a new URL, so the CDN can
    # cache forever and never serve a stale picture; a re-run PUTs the same bytes
    # under the same key.
    key = f"{rt.settings.object_prefix}{job['file_id']}/{name}-{written['sha256'][:16]}.{fmt}"
    with metrics.phase("upload"):
        rt.storage.put_file(key, rt.scratch.path(job["id"], token, written["file"]), written["content_type"],
                            IMMUTABLE)
    return {"url": rt.storage.url(key), "key": key, "bytes": written["bytes"],
            "content_type": written["content_type"]}

"""Step 3: PUT each variant once under its content-addressed key, then finalize the job.

Job state: begun as stage upload by the lifecycle (publisher/jobs/lifecycle.py);
this step finalizes the job itself (queries.finalize, in one transaction with
the imaging facts); on failure the lifecycle retries or fails the job.
"""

import logging

import dramatiq

from publisher import telemetry
from publisher.app.runtime import process_runtime
from publisher.clients.storage import IMMUTABLE
from publisher.errors import PermanentError
from publisher.jobs import queries
from publisher.jobs.handoff import Artifacts, StagedFile
from publisher.jobs.locality import QUEUE
from publisher.stages import PRIORITY

logger = logging.getLogger("publisher.jobs")


@dramatiq.actor(queue_name=QUEUE, priority=PRIORITY["upload"], throws=(PermanentError,))
def upload(job_id: int, token: str) -> None:
    rt = process_runtime()
    job = rt.load_job(job_id, token)
    artifacts = Artifacts.from_json(job["artifacts"])
    published = {}
    for name, formats in artifacts.variants.items():
        objects = {fmt: _publish(rt, job, token, name, fmt, staged) for fmt, staged in formats.items()}
        webp = formats["webp"]
        # The webp object at the top level, as before (the contract); every format under "formats".
        published[name] = {
            **{k: objects["webp"][k] for k in ("url", "key", "bytes")},
            "width": webp.width, "height": webp.height, "frames": webp.frames,
            "formats": objects,
        }
    source, facts = artifacts.source, artifacts.imaging
    with rt.db.transaction() as cur:
        outcome = queries.finalize(cur, job_id, token, published, source.width, source.height)
        if outcome == "completed":
            queries.record_imaging(cur, job_id, token, facts.recipe, facts.placeholder, facts.dominant_color)
    if outcome == "stale":
        logger.info("job=%s was finalized by another attempt; nothing changed", job_id)
        return
    if outcome == "deleted":
        logger.warning("job=%s: the file was deleted while the job ran; not published", job_id)
    rt.scratch.remove(job_id, token)


def _publish(rt, job: dict, token: str, name: str, fmt: str, staged: StagedFile) -> dict:
    # The content hash in the key: a changed image gets a new URL, so the CDN can
    # cache forever and never serve a stale picture; a re-run PUTs the same bytes
    # under the same key.
    key = f"{rt.settings.object_prefix}{job['file_id']}/{name}-{staged.sha256[:16]}.{fmt}"
    queries.track_object(rt.db, job["id"], token, key)  # before the PUT: maintenance never removes it under us
    with telemetry.phase("upload"):
        rt.storage.put_file(key, rt.scratch.path(job["id"], token, staged.file), staged.content_type, IMMUTABLE)
    return {"url": rt.storage.url(key), "key": key, "bytes": staged.bytes, "content_type": staged.content_type}

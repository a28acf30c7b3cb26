"""Step 3: PUT each variant once under its content-addressed key; returns what
it published.

Job state: begun as stage upload by the lifecycle (publisher/jobs/lifecycle.py),
which finalizes the job with the result (in one transaction with the imaging
facts); on failure the lifecycle retries or fails the job.

The artifacts it reads back are untrusted: every staged file is opened (a plain
name, a regular file inside the attempt's folder) and hashed before the first
PUT, the key carries the hash of the bytes sent, and the Content-Type follows
from the format. Bytes other than the variant step wrote mean the attempt's
files are not what it made: the job starts over (ScratchFilesChanged).
"""

import contextlib
import logging
import re

import dramatiq

from publisher import telemetry
from publisher.app.runtime import process_runtime
from publisher.clients.storage import IMMUTABLE
from publisher.errors import PermanentError
from publisher.imaging.output import CONTENT_TYPES
from publisher.jobs.handoff import Artifacts, Published, StagedFile
from publisher.jobs.locality import QUEUE
from publisher.jobs.scratch import ScratchFilesChanged, StagedBytes
from publisher.jobs.store import steps
from publisher.jobs.store.rows import StepJob
from publisher.settings import fixed
from publisher.stages import PRIORITY

logger = logging.getLogger("publisher.jobs")

#: A variant's name as it goes into an object key (VARIANTS names are identifiers).
VARIANT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@dramatiq.actor(queue_name=QUEUE, priority=PRIORITY["upload"], throws=(PermanentError,))
def upload(job_id: int, token: str) -> Published:
    rt = process_runtime()
    job = rt.load_job(job_id, token)
    artifacts = Artifacts.from_json(job.artifacts)
    if not artifacts.variants or artifacts.source is None or artifacts.imaging is None or any(
            "webp" not in formats for formats in artifacts.variants.values()):
        raise PermanentError("the job's artifacts name no variants to upload, or one without its webp",
                             "bad_artifacts")
    published = {}
    with contextlib.ExitStack() as opened:
        # Every file is checked before the first PUT: a bad one sends nothing.
        files = {name: {fmt: opened.enter_context(_open(rt, job_id, token, name, fmt, staged))
                        for fmt, staged in formats.items()}
                 for name, formats in artifacts.variants.items()}
        for name, formats in artifacts.variants.items():
            objects = {fmt: {**_publish(rt, job, token, name, fmt, files[name][fmt]), **staged.chosen()}
                       for fmt, staged in formats.items()}
            webp = formats["webp"]
            # The webp object at the top level, as before (the contract); every format under "formats".
            published[name] = {
                **{k: objects["webp"][k] for k in ("url", "key", "bytes")},
                "width": webp.width, "height": webp.height, "frames": webp.frames,
                "formats": objects,
            }
    return Published(published, artifacts.source, artifacts.imaging)


@contextlib.contextmanager
def _open(rt, job_id: int, token: str, name: str, fmt: str, staged: StagedFile):
    """The staged file of one format of one variant, open and hashed, if it holds what the
    variant step wrote."""
    if not VARIANT_NAME.fullmatch(name) or fmt not in CONTENT_TYPES:
        raise PermanentError(f"the job's artifacts name variant {name[:64]!r} in format {fmt[:16]!r}, "
                             "which this worker does not publish", "bad_artifacts")
    with rt.scratch.open_staged(job_id, token, staged.file) as read:
        if (read.sha256, read.size) != (staged.sha256, staged.bytes):
            raise ScratchFilesChanged(f"{staged.file!r} holds {read.size} bytes of sha256 {read.sha256[:16]}, "
                                      f"not the {staged.bytes} bytes of {staged.sha256[:16]} the variant step wrote")
        yield read


def _publish(rt, job: StepJob, token: str, name: str, fmt: str, read: StagedBytes) -> dict:
    # The content hash in the key: a changed image gets a new URL, so the CDN can
    # cache forever and never serve a stale picture; a re-run PUTs the same bytes
    # under the same key.
    key = f"{fixed.OBJECT_PREFIX}{job.file_id}/{name}-{read.sha256[:16]}.{fmt}"
    content_type = CONTENT_TYPES[fmt]
    steps.track_object(rt.db, job.id, token, key)  # before the PUT: maintenance never removes it under us
    with telemetry.phase("upload"):
        rt.storage.put_stream(key, read.file, read.size, content_type, IMMUTABLE)
    return {"url": rt.storage.url(key), "key": key, "bytes": read.size, "content_type": content_type}

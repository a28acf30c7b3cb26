"""Step 1: download the original from RAID into this host's scratch folder of the attempt.

Runs on any worker host (the shared queue); the job's later steps then run on
this host (publisher/jobs/locality.py), which is why the original never goes to the bucket.
A full scratch disk is NoSpace (no_space): the job starts over, charged nothing
(publisher/jobs/host_faults.py).

Job state (publisher/jobs/lifecycle.py): begun as stage fetch; on success the
returned `Fetched` is merged into the job's artifacts and variant begun and handed
to this process's threads; on failure the job is retried or failed.
"""

import dramatiq

from publisher import imaging, telemetry
from publisher.app.runtime import process_runtime
from publisher.errors import PermanentError
from publisher.imaging.options import DEFAULT_MAX_SOURCE_PIXELS
from publisher.jobs.handoff import Fetched, Source
from publisher.jobs.locality import QUEUE
from publisher.stages import PRIORITY

#: The original's file name in the attempt's scratch folder.
SOURCE = "source"


@dramatiq.actor(queue_name=QUEUE, priority=PRIORITY["fetch"], throws=(PermanentError,))
def fetch(job_id: int, token: str) -> Fetched:
    rt = process_runtime()
    job = rt.load_job(job_id, token)
    with telemetry.phase("download"), rt.scratch.writing(), rt.scratch.target(job_id, token, SOURCE) as path:
        rt.origin.download(job.raid_key, path)
    # Hashed as it lies in scratch, and probed from the file hashed: the variant step
    # decodes it only if it still holds these bytes.
    with rt.scratch.open_staged(job_id, token, SOURCE) as fetched:
        try:
            probed = imaging.probe(fetched.path, DEFAULT_MAX_SOURCE_PIXELS)
        except PermanentError as e:
            raise PermanentError(f"{e} (raid_key {job.raid_key!r})", e.reason) from None
    return Fetched(Source(file=SOURCE, bytes=fetched.size, format=probed.format, width=probed.width,
                          height=probed.height, sha256=fetched.sha256))

"""Step 1: download the original from RAID into this host's scratch folder of the attempt.

Runs on any worker host (the shared queue); the job's later steps then run on
this host (publisher/jobs/locality.py), which is why the original never goes to the bucket.
"""

import dramatiq

from publisher import imaging

from publisher.observability import prometheus as metrics
from publisher.errors import PermanentError
from publisher.jobs.locality import QUEUE
from publisher.app.runtime import worker_runtime

#: The original's file name in the attempt's scratch folder.
SOURCE = "source"


@dramatiq.actor(queue_name=QUEUE, priority=20, throws=(PermanentError,))
def fetch(job_id: int, token: str) -> dict:
    rt = worker_runtime()
    job = rt.load_job(job_id, token)
    path = rt.scratch.path(job_id, token, SOURCE)
    with metrics.phase("download"):
        size = rt.origin.download(job["raid_key"], path)
    try:
        probed = imaging.probe(path, rt.settings.max_source_pixels)
    except PermanentError as e:
        raise PermanentError(f"{e} (raid_key {job['raid_key']!r})") from None
    return {"source": {"file": SOURCE, "bytes": size, "format": probed.format,
                       "width": probed.width, "height": probed.height}}

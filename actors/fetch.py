"""Step 1: download the original from RAID and stage it for the variant step."""

import os

import dramatiq

from publisher import imaging, metrics
from publisher.broker import queue_for
from publisher.errors import PermanentError
from publisher.runtime import worker_runtime

#: Milliseconds a fetch may take before Dramatiq interrupts it (then it is retried).
TIME_LIMIT_MS = 30 * 60 * 1000


@dramatiq.actor(queue_name=queue_for("fetch"), priority=20, time_limit=TIME_LIMIT_MS, throws=(PermanentError,))
def fetch(job_id: int, token: str) -> dict:
    rt = worker_runtime()
    job = rt.load_job(job_id, token)
    path = os.path.join(rt.job_dir(job_id), "source")
    with metrics.phase("download"):
        size = rt.origin.download(job["raid_key"], path)
    try:
        probed = imaging.probe(path, rt.settings.max_source_pixels)
    except PermanentError as e:
        raise PermanentError(f"{e} (raid_key {job['raid_key']!r})") from None
    # Staged under the attempt: a stale attempt waking up cannot overwrite what the current one staged.
    key = rt.storage.staging_key(job_id, f"{token}/source")
    rt.storage.put_file(key, path)
    return {"source": {"key": key, "bytes": size, "format": probed.format,
                       "width": probed.width, "height": probed.height}}

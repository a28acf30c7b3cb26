"""Step 2: decode the original once and write every variant, in every format,
beside it in the attempt's scratch folder (same host as the fetch).

Job state (publisher/jobs/lifecycle.py): begun as stage variant; on success the
returned `Rendered` is merged into the job's artifacts and upload begun and handed
to this process's threads; on failure the job is retried or failed. The source's name
comes back from the job's artifacts, untrusted: only a regular file of the
attempt's folder is read, and removed (publisher/jobs/scratch.py), and only if it
holds the bytes the fetch hashed (else ScratchFilesChanged: the job starts over).
"""

import dramatiq

from publisher import imaging, telemetry
from publisher.app.runtime import process_runtime
from publisher.errors import PermanentError
from publisher.imaging.options import DEFAULT_MAX_SOURCE_PIXELS
from publisher.jobs.handoff import Artifacts, ImagingFacts, Rendered, StagedFile
from publisher.jobs.locality import QUEUE
from publisher.stages import PRIORITY


@dramatiq.actor(queue_name=QUEUE, priority=PRIORITY["variant"], throws=(PermanentError,))
def variant(job_id: int, token: str) -> Rendered:
    rt = process_runtime()
    job = rt.load_job(job_id, token)
    fetched = Artifacts.from_json(job.artifacts).source
    if fetched is None:
        raise PermanentError("the job's artifacts name no source", "bad_artifacts")
    recipe = imaging.Recipe.from_settings(rt.settings)
    # Decoded from the file hashed, only if it holds what the fetch hashed (else the job starts over).
    with rt.scratch.open_source(job_id, token, fetched.file, fetched.sha256) as source:
        probed = imaging.probe(source.path, DEFAULT_MAX_SOURCE_PIXELS)
        rendition = imaging.render(source.path, probed, recipe)
    written: dict[str, dict[str, StagedFile]] = {}  # name -> format -> file
    with rt.scratch.writing():
        for v in rendition.variants:
            name = f"{v.name}.{v.format}"
            with rt.scratch.create(job_id, token, name) as out:
                out.write(v.data)
            written.setdefault(v.name, {})[v.format] = StagedFile(
                file=name, width=v.width, height=v.height, bytes=len(v.data), sha256=v.sha256, frames=v.frames,
                quality=v.quality, score=v.score if v.score is None else round(v.score, 2), target=v.target,
                bound=v.bound)
            telemetry.variant_made(v.name, v.format, len(v.data), v.score)
    rt.scratch.unlink(job_id, token, fetched.file)  # the variants are all the upload needs
    return Rendered(written, ImagingFacts(recipe=imaging.recipe_version(recipe), placeholder=rendition.placeholder,
                                          dominant_color=rendition.dominant_color, frames=rendition.frames))

"""Step 2: decode the original once and stage every variant, in every format, for upload."""

import os

import dramatiq

from publisher import imaging
from publisher.broker import queue_for
from publisher.errors import PermanentError
from publisher.runtime import worker_runtime


@dramatiq.actor(queue_name=queue_for("variant"), priority=10, throws=(PermanentError,))
def variant(job_id: int, token: str) -> dict:
    rt = worker_runtime()
    job = rt.load_job(job_id, token)
    source = job["artifacts"]["source"]
    path = os.path.join(rt.job_dir(job_id), "source")
    # Same host as the fetch: the file is still here. Another host: take the staged copy.
    if not (os.path.exists(path) and os.path.getsize(path) == source["bytes"]):
        rt.storage.get_file(source["key"], path)
    recipe = imaging.Recipe.from_settings(rt.settings)
    probed = imaging.probe(path, rt.settings.max_source_pixels)
    rendition = imaging.render(path, probed, recipe)
    staged: dict[str, dict[str, dict]] = {}  # name -> format -> staged object
    for v in rendition.variants:
        key = rt.storage.staging_key(job_id, f"{token}/{v.name}.{v.extension}")  # per attempt: a late older attempt cannot overwrite it
        rt.storage.put_bytes(key, v.data, v.content_type)
        staged.setdefault(v.name, {})[v.format] = {
            "staged_key": key, "width": v.width, "height": v.height, "bytes": len(v.data),
            "sha256": v.sha256, "content_type": v.content_type, "extension": v.extension,
            "frames": v.frames,
        }
    os.unlink(path)
    return {
        "variants": staged,
        "imaging": {"recipe": imaging.recipe_version(recipe), "placeholder": rendition.placeholder,
                    "dominant_color": rendition.dominant_color, "frames": rendition.frames},
    }

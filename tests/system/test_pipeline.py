"""The whole system on real Postgres, a real S3 server and an HTTP origin:
rows inserted by plain SQL come out as WebP variants in the bucket."""

import re

import pytest
import pyvips

from devstack.ports import wait_until
from tests.support.quality import assert_quality_chosen
from tests.support.stack import BROKERS, CDN, TOKEN

IMMUTABLE = "public, max-age=31536000, immutable"


def decode(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def assert_published(stack, job_id, expected_sizes):
    job = stack.wait_for(job_id)
    assert job["status"] == "completed", job["last_error"]
    assert job["publish_status"] == "published"
    assert job["completed_at"] and job["started_at"] and job["published_at"]
    assert set(job["variants"]) == set(expected_sizes)
    images = {}
    for name, (width, height) in expected_sizes.items():
        v = job["variants"][name]
        assert (v["width"], v["height"]) == (width, height), name
        assert v["url"] == f"{CDN}/{v['key']}"
        # content-addressed: name, a hash, the extension
        assert re.fullmatch(rf"media/{job['file_id']}/{name}-[0-9a-f]{{16}}\.webp", v["key"]), v["key"]
        data, headers = stack.object(v["key"])
        assert headers["Content-Type"] == "image/webp"
        assert headers["Cache-Control"] == IMMUTABLE
        assert len(data) == v["bytes"]
        image = decode(data)
        assert image.get("vips-loader") == "webpload_buffer"
        assert (image.width, image.height) == (width, height)
        images[name] = image
        # the default quality is fixed (VARIANT_QUALITY=q80): nothing searched, nothing measured
        webp = v["formats"]["webp"]
        assert (webp["quality"], webp["score"], webp["target"], webp["bound"]) == (80, None, None, None)
    # The bucket holds the published objects of the file and nothing else: nothing
    # is staged there; the steps passed the files in the worker host's scratch folder,
    # which is emptied once the job is finalized.
    assert stack.keys(f"media/{job['file_id']}/") == sorted(v["key"] for v in job["variants"].values())
    assert stack.keys("_staging/") == []
    wait_until(lambda: not list(stack.scratch.glob(f"{job_id}-*")), 30, f"job {job_id}'s scratch folder to go")
    return job, images


@pytest.fixture(scope="module", params=BROKERS)
def system(request, pg_server, s3, origin, tmp_path_factory):
    from tests.support.stack import Stack

    s = Stack(pg_server, s3, origin, tmp_path_factory.mktemp("system"), broker=request.param)
    s.start_workers()
    s.start_listener()
    yield s
    s.stop()


def test_a_landscape_jpeg_is_published_in_every_variant_width(system):
    job_id = system.publish("exif-orientation-1.jpg")  # 1800x1200
    assert_published(system, job_id, {"display": (1600, 1067), "thumb": (400, 267)})


def test_a_portrait_jpeg_is_published_fitted_by_its_height(system, origin_root):
    pyvips.Image.black(1200, 2000).add(128).cast("uchar").bandjoin([60, 200]).copy(
        interpretation="srgb").jpegsave(str(origin_root / "portrait.jpg"))
    job_id = system.publish("portrait.jpg")
    assert_published(system, job_id, {"display": (960, 1600), "thumb": (240, 400)})


def test_small_jpeg_is_never_upscaled(system):
    job_id = system.publish("progressive.jpg")  # 256x160
    assert_published(system, job_id, {"display": (256, 160), "thumb": (256, 160)})


def test_png_alpha_is_kept(system):
    job_id = system.publish("png-alpha.png")  # 2048x1536, mostly transparent
    _, images = assert_published(system, job_id, {"display": (1600, 1200), "thumb": (400, 300)})
    for image in images.values():
        assert image.hasalpha()
        alpha = image[image.bands - 1]
        assert alpha.min() == 0 and alpha.max() == 255


def test_exif_rotated_photo_is_published_upright(system):
    reference = system.publish("exif-orientation-1.jpg")
    rotated = system.publish("exif-orientation-6.jpg")  # stored 1200x1800, displays 1800x1200
    _, ref = assert_published(system, reference, {"display": (1600, 1067), "thumb": (400, 267)})
    job, rot = assert_published(system, rotated, {"display": (1600, 1067), "thumb": (400, 267)})
    assert (job["width"], job["height"]) == (1800, 1200)
    # the same picture, not merely the same size
    diff = (ref["display"].cast("float") - rot["display"].cast("float")).abs().avg()
    assert diff < 8, diff


def test_the_variants_json_records_each_formats_quality_score_and_target(make_stack):
    stack = make_stack(VARIANT_QUALITY="thumb:80,display:70", VARIANT_FORMATS="webp,avif")
    stack.start_workers()
    stack.start_listener()
    job = stack.wait_for(stack.publish("exif-orientation-1.jpg"))
    assert job["status"] == "completed", job["last_error"]
    for name, target in (("thumb", 80.0), ("display", 70.0)):
        formats = job["variants"][name]["formats"]
        assert set(formats) == {"webp", "avif"}
        for entry in formats.values():
            assert_quality_chosen(entry, target, (job["variants"][name]["width"], job["variants"][name]["height"]))
    # the higher target, the higher quality: the thumb's WebP costs more bytes per pixel
    thumb, display = (job["variants"][n]["formats"]["webp"] for n in ("thumb", "display"))
    assert thumb["quality"] > display["quality"]


def test_changed_image_gets_new_url(system, origin_root):
    pyvips.Image.black(500, 400).add(30).cast("uchar").jpegsave(str(origin_root / "lot-17.jpg"))
    file_id = system.add_file("lot-17.jpg")
    first = system.wait_for(system.request_publish(file_id))
    pyvips.Image.black(500, 400).add(220).cast("uchar").jpegsave(str(origin_root / "lot-17.jpg"))
    second = system.wait_for(system.request_publish(file_id))
    assert first["status"] == second["status"] == "completed"
    assert first["variants"]["display"]["key"] != second["variants"]["display"]["key"]
    row = system.sql("SELECT variants FROM auction_files WHERE id = %s", (file_id,))[0]
    assert row["variants"]["display"]["key"] == second["variants"]["display"]["key"]


def test_one_active_job_per_file(system):
    file_id = system.add_file("missing-but-irrelevant.jpg")
    system.sql("ALTER TABLE publish_jobs DISABLE TRIGGER publish_jobs_notify_runnable")
    try:
        system.request_publish(file_id)
        with pytest.raises(Exception, match="publish_jobs_one_active_per_file"):
            system.request_publish(file_id)
    finally:
        system.sql("ALTER TABLE publish_jobs ENABLE TRIGGER publish_jobs_notify_runnable")
        system.sql("UPDATE publish_jobs SET status = 'failed' WHERE file_id = %s", (file_id,))


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_a_job_inserted_while_no_listener_runs_is_published_once_one_starts(make_stack):
    stack = make_stack()
    stack.start_workers()
    job_id = stack.publish("exif-orientation-1.jpg")
    assert stack.job(job_id)["status"] == "pending"  # nobody has claimed it
    stack.start_listener()
    assert_published(stack, job_id, {"display": (1600, 1067), "thumb": (400, 267)})


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_wrong_bearer_token_fails_clearly_without_printing_it(make_stack, origin):
    wrong = "wrong-token-0123456789"
    stack = make_stack(RAID_PUBLISHER_SECRET=wrong)
    stack.start_workers()
    stack.start_listener()
    job_id = stack.publish("exif-orientation-1.jpg")
    job = stack.wait_for(job_id)
    assert job["status"] == "failed"
    assert job["publish_status"] == "failed"
    assert job["retry_count"] == 0  # permanent: one attempt, no retries
    assert "401" in job["last_error"] and "RAID_PUBLISHER_SECRET" in job["last_error"]
    assert "exif-orientation-1.jpg" in job["last_error"]
    assert wrong not in job["last_error"] and TOKEN not in job["last_error"]
    stack.listener.stop()
    stack.workers.stop()
    logs = stack.logs()
    assert f"job={job_id}" in logs
    assert wrong not in logs and TOKEN not in logs


def test_two_listeners_never_enqueue_a_job_twice(make_stack):
    stack = make_stack()
    stack.start_workers()
    first, second = stack.start_listener(), stack.start_listener()
    file_ids = [stack.add_file("progressive.jpg") for _ in range(30)]
    # One statement, so both listeners are woken for the same batch.
    jobs = [r["id"] for r in stack.sql(
        "INSERT INTO publish_jobs (file_id) SELECT unnest(%s::uuid[]) RETURNING id", (file_ids,))]
    for job_id in jobs:
        assert stack.wait_for(job_id)["status"] == "completed"
    fetches = stack.sql(
        "SELECT (message->'args'->>0)::bigint AS job_id, count(*) AS n FROM dramatiq.queue "
        "WHERE message->>'actor_name' = 'fetch' GROUP BY 1")
    assert sorted(r["job_id"] for r in fetches) == sorted(jobs)
    assert {r["n"] for r in fetches} == {1}
    assert first.running() and second.running()


def test_a_burst_beyond_the_workers_room_drains_without_waiting_for_the_listeners_sweep(make_stack):
    # The room a started job frees is claimed on the listener's short refill timer, not at its sweep.
    stack = make_stack(WORKER_POLL_INTERVAL=600_000)
    stack.start_workers(processes=1, threads=1)  # room for 2 jobs
    stack.start_listener()
    file_ids = [stack.add_file(raid_key) for raid_key in ("progressive.jpg", "exif-orientation-1.jpg") * 4]
    jobs = [r["id"] for r in stack.sql(
        "INSERT INTO publish_jobs (file_id) SELECT unnest(%s::uuid[]) RETURNING id", (file_ids,))]
    for job_id in jobs:
        assert stack.wait_for(job_id, timeout=60)["status"] == "completed"


def test_max_retries_from_the_environment_is_the_default_for_new_jobs(make_stack):
    stack = make_stack(MAX_RETRIES=2)
    file_id = stack.add_file("progressive.jpg")
    before = stack.sql("INSERT INTO publish_jobs (file_id) VALUES (%s) RETURNING max_retries", (file_id,))
    assert before[0]["max_retries"] == 5  # the contract's default, until a listener has said otherwise
    stack.start_workers()
    stack.start_listener()
    stack.wait_for(stack.sql("SELECT id FROM publish_jobs")[0]["id"])
    job_id = stack.request_publish(file_id)
    assert stack.job(job_id)["max_retries"] == 2
    assert stack.wait_for(job_id)["status"] == "completed"

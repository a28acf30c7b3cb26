"""What a job costs in requests and bytes: the bucket sees one PUT per published
object and nothing else (no staging, no HEAD, GET or LIST on the way), and RAID
is read once per job. Counted by a proxy between the workers and the S3 server."""

import shutil

import pytest

from devstack.s3proxy import S3Proxy
from tests.support.stack import BROKERS

pytestmark = pytest.mark.parametrize("broker", BROKERS, indirect=True)

#: Different kinds of source, so that no format's path stages anything.
IMAGES = ["large-photo-12mp.jpg", "png-alpha.png", "exif-orientation-6.jpg", "animated.gif"]


@pytest.fixture
def proxy(s3):
    p = S3Proxy(("127.0.0.1", s3.port)).start()
    yield p
    p.stop()


def test_the_bucket_sees_only_the_published_objects_and_raid_is_read_once(make_stack, proxy, origin, origin_root,
                                                                            tmp_path):
    stack = make_stack(B2_ENDPOINT=proxy.endpoint)
    keys = {}
    for image in IMAGES:  # keys of their own, so the origin's byte counts are this test's
        keys[image] = f"traffic-{tmp_path.name}-{image}"
        shutil.copy(origin_root / image, origin_root / keys[image])
    stack.start_workers()
    stack.start_listener()
    jobs = [stack.publish(key) for key in keys.values()]
    published_bytes, objects = 0, []
    for job_id in jobs:
        job = stack.wait_for(job_id)
        assert job["status"] == "completed", job["last_error"]
        for variant in job["variants"].values():
            for entry in variant["formats"].values():
                published_bytes += entry["bytes"]
                objects.append(entry["key"])

    traffic = proxy.traffic.snapshot()
    # One PUT per published object, and not one other request.
    assert traffic["requests"] == {"PUT": len(objects)}, proxy.traffic.paths
    assert traffic["bytes_sent"] <= 1.1 * published_bytes
    assert traffic["bytes_received"] <= 0.1 * published_bytes
    # The bucket holds the published objects and nothing else of these files.
    files = {stack.job(j)["file_id"] for j in jobs}
    assert sorted(k for f in files for k in stack.keys(f"media/{f}/")) == sorted(objects)
    assert stack.keys("_staging/") == []
    # RAID: each original downloaded once.
    for image, key in keys.items():
        assert origin.bytes_served[key] == (origin_root / image).stat().st_size, image

"""The scratch folder and the host's files: what a job's artifacts name is read
back from the database and never trusted (no host file is published or
deleted, no content type comes from them), worker groups that share a host name
or restart with an empty scratch volume complete every job without a retry, and
a full scratch disk delays jobs but fails none."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devstack.ports import free_ports_in_a_row, wait_until
from publisher.jobs.host_identity import default_host_id
from tests.faults import harness
from tests.faults.harness import (
    RESTART_AFTER_FETCH_MARK,
    RESTART_ONCE_ENV,
    SOURCE_SWAPPED_MARK,
    SWAPPED_SOURCE_ENV,
    SYMLINK_MARK,
    SYMLINK_TARGET_ENV,
)
from tests.support.stack import BROKERS

#: Both brokers in `make test-faults`; the PostgreSQL broker (the default) in `make test`.
ON_BOTH_BROKERS = pytest.mark.parametrize(
    "broker", [pytest.param(b, marks=[pytest.mark.faults_slow] if b != "postgres" else []) for b in BROKERS],
    indirect=True)

#: A test-only trigger: rewrites one value of a job's artifacts, once, when the job
#: reaches a stage, as anyone who may UPDATE publish_jobs could between two steps.
TAMPER = """
CREATE TABLE tamper (job_id bigint, at_stage text, path text[], value jsonb);
CREATE FUNCTION tamper_artifacts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE t record;
BEGIN
    FOR t IN DELETE FROM tamper WHERE job_id = NEW.id AND at_stage = NEW.stage RETURNING * LOOP
        NEW.artifacts := jsonb_set(NEW.artifacts, t.path, t.value);
    END LOOP;
    RETURN NEW;
END $$;
CREATE TRIGGER zz_tamper BEFORE UPDATE ON publish_jobs FOR EACH ROW
    WHEN (NEW.stage IS DISTINCT FROM OLD.stage) EXECUTE FUNCTION tamper_artifacts();
"""


def _tamper(stack, job_id: int, at_stage: str, path: list[str], value) -> None:
    stack.sql("INSERT INTO tamper VALUES (%s, %s, %s, %s)", (job_id, at_stage, path, json.dumps(value)))


def _objects_of(stack, job_ids) -> dict[str, tuple[bytes, str]]:
    """Every object under the files of the jobs: bytes and Content-Type."""
    objects = {}
    for job_id in job_ids:
        for key in stack.keys(f"media/{stack.job(job_id)['file_id']}/"):
            data, headers = stack.object(key)
            objects[key] = (data, headers["Content-Type"])
    return objects


def test_artifacts_tampered_between_steps_never_publish_or_delete_a_host_file(fault_stack, batch, origin_root):
    stack = fault_stack()
    stack.sql(TAMPER)
    jobs = batch(stack, "artifacts-tampered")
    host = stack.tmp / "host-files"
    host.mkdir()
    # Host files an attacker would have published (or deleted): text, and an image.
    secrets = {name: host / name for name in ("absolute.txt", "traversal.txt", "symlinked.txt")}
    for name, path in secrets.items():
        path.write_text(f"host file {name}: not for the CDN\n")
    image = host / "an-image-of-the-host.jpg"
    shutil.copy(origin_root / "progressive.jpg", image)
    before = {path: path.read_bytes() for path in [*secrets.values(), image]}

    absolute = jobs.add(jobs.source("exif-orientation-3.jpg"), expect="failed")
    _tamper(stack, absolute, "upload", ["variants", "thumb", "webp", "file"], str(secrets["absolute.txt"]))
    # The attempt's folder is SCRATCH_DIR/<job>-<token>: two levels up is the stack's tmp.
    traversal = jobs.add(jobs.source("exif-orientation-4.jpg"), expect="failed")
    _tamper(stack, traversal, "upload", ["variants", "display", "webp", "file"], "../../host-files/traversal.txt")
    deleted_source = jobs.add(jobs.source("exif-orientation-5.jpg"), expect="failed")
    _tamper(stack, deleted_source, "variant", ["source", "file"], str(image))
    symlinked = jobs.add(jobs.source("exif-orientation-7.jpg", SYMLINK_MARK + "-"), expect="failed")
    html = jobs.add(jobs.source("exif-orientation-8.jpg"))
    _tamper(stack, html, "upload", ["variants", "thumb", "webp", "content_type"], "text/html")
    forged_hash = jobs.add(jobs.source("exif-orientation-2.jpg"))
    _tamper(stack, forged_hash, "upload", ["variants", "display", "webp", "sha256"], "0" * 64)
    jobs.faults = 6

    harness.start_workers(stack, hooks=True, env={SYMLINK_TARGET_ENV: str(secrets["symlinked.txt"])})
    stack.start_listener()
    jobs.wait()
    result = jobs.outcome()

    # No host file was touched, and none reached the bucket.
    assert {path: path.read_bytes() for path in before} == before
    objects = _objects_of(stack, jobs.expected)
    assert not [key for key, (data, _) in objects.items() if data in before.values()]
    assert not [key for key, (_, content_type) in objects.items() if not content_type.startswith("image/")]
    result.assert_clean()
    for job_id in (absolute, traversal, deleted_source, symlinked):
        row = stack.job(job_id)
        assert row["status"] == "failed" and row["failure_reason"] == "bad_artifacts", row
    # What completed is exactly what its own files hold: each key names its bytes' hash.
    # The forged hash made the upload find other bytes than it was told: the job started
    # over from its fetch, charged nothing.
    row = stack.job(forged_hash)
    assert (row["scratch_restarts"], row["retry_count"], row["failure_reason"]) == (1, 0, "scratch_changed"), row
    for job_id in (html, forged_hash):
        row = stack.job(job_id)
        for variant in row["variants"].values():
            for fmt, published in variant["formats"].items():
                data, headers = stack.object(published["key"])
                assert headers["Content-Type"] == f"image/{fmt}"
                assert published["content_type"] == f"image/{fmt}"
                assert f"-{hashlib.sha256(data).hexdigest()[:16]}." in published["key"]


def test_an_original_swapped_after_its_fetch_is_never_decoded_and_the_job_starts_over(fault_stack, batch,
                                                                                       origin_root):
    stack = fault_stack()
    jobs = batch(stack, "source-swapped")
    plain = jobs.add(jobs.source("exif-orientation-6.jpg"))
    swapped = jobs.add(jobs.source("exif-orientation-6.jpg", SOURCE_SWAPPED_MARK + "-"))
    jobs.faults = 1
    harness.start_workers(stack, hooks=True, env={SWAPPED_SOURCE_ENV: str(origin_root / "progressive.jpg")})
    stack.start_listener()
    jobs.wait()
    jobs.outcome().assert_clean()
    # Published from the original fetched again, not from the bytes put in its place.
    row = stack.job(swapped)
    assert (row["scratch_restarts"], row["retry_count"], row["failure_reason"]) == (1, 0, "scratch_changed"), row
    published = {name: v["formats"]["webp"]["bytes"] for name, v in row["variants"].items()}
    assert published == {name: v["formats"]["webp"]["bytes"] for name, v in stack.job(plain)["variants"].items()}
    assert (row["width"], row["height"]) == (stack.job(plain)["width"], stack.job(plain)["height"])


def test_two_worker_groups_sharing_a_host_name_complete_every_job_without_a_retry(fault_stack, batch):
    """Two worker services on one machine (one hostname), each with a scratch directory of
    its own, consuming one database."""
    stack = fault_stack()
    jobs = batch(stack, "shared-host-name")
    for _ in range(16):
        jobs.add(jobs.source("exif-orientation-1.jpg"))
    jobs.faults = 1  # one host name for two scratch directories
    for group in ("a", "b"):
        harness.start_workers(stack, processes=1, threads=2, env={"SCRATCH_DIR": str(stack.tmp / f"scratch-{group}")})
    stack.start_listener()
    jobs.wait()
    result = jobs.outcome()
    result.assert_clean()
    assert result.completed == 16
    assert [(r["id"], r["last_error"]) for r in result.rows if r["retry_count"]] == []
    # Each group is a host of its own: no step ever looked for files in the other's scratch.
    assert stack.sql("SELECT count(*) AS n FROM publish_jobs WHERE scratch_restarts > 0")[0]["n"] == 0
    assert stack.sql("SELECT count(DISTINCT host_id) AS n FROM publisher_workers")[0]["n"] == 2


def _between_steps(stack, job_ids, host_id: str) -> set[int]:
    """Jobs whose next step waits on the host (their files in its scratch)."""
    return {r["id"] for r in stack.sql("SELECT id FROM publish_jobs WHERE id = ANY(%s) AND host_id = %s "
                                       "AND status IN ('queued', 'processing') AND stage <> 'fetch'",
                                       (list(job_ids), host_id))}


@ON_BOTH_BROKERS
def test_a_worker_restarted_with_an_empty_scratch_completes_every_job_without_a_retry(fault_stack, batch, broker):
    """A container restarted (SIGTERM, as `docker restart` sends) just after a fetch, its
    scratch volume emptied of the attempts' files (not of the file that names the host) when
    it comes back: the same host, its files gone."""
    stack = fault_stack()
    host_id = default_host_id(str(stack.scratch))
    jobs = batch(stack, f"empty-scratch-restart-{broker}")
    restarted_after_fetch = jobs.add(jobs.source("exif-orientation-6.jpg", RESTART_AFTER_FETCH_MARK + "-"))
    for _ in range(7):
        jobs.add(jobs.source("exif-orientation-6.jpg"))
    env = {RESTART_ONCE_ENV: str(stack.tmp / "restarted-once")}
    workers = harness.start_workers(stack, processes=1, threads=1, hooks=True, env=env)
    stack.start_listener()
    wait_until(lambda: not workers.running(), 60, "the host to stop after the marked job's fetch")
    waiting = _between_steps(stack, jobs.expected, host_id)
    assert restarted_after_fetch in waiting, "the marked job's next step is not waiting on the host"
    jobs.faults = len(waiting)
    for entry in stack.scratch_folders():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    harness.start_workers(stack, processes=1, threads=2, hooks=True, env=env)
    jobs.wait()
    result = jobs.outcome()
    result.assert_clean()
    assert result.completed == 8
    assert [(r["id"], r["last_error"]) for r in result.rows if r["retry_count"]] == []
    # The jobs that waited on the lost files started over from their fetch, once.
    restarts = {r["id"]: r["scratch_restarts"] for r in stack.sql(
        "SELECT id, scratch_restarts FROM publish_jobs WHERE id = ANY(%s)", (list(waiting),))}
    assert restarts == {job_id: 1 for job_id in waiting}


# -- a full scratch disk ---------------------------------------------------------
MIB = 1024 * 1024


def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _fill(path: Path, leave: int) -> Path:
    """Fills the file system of `path` but `leave` bytes, with one file."""
    filler = path / "filler"
    with open(filler, "ab") as f:
        f.write(b"\0" * max(0, _free_bytes(path) - leave))
    return filler


@pytest.fixture
def small_tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs as SCRATCH_DIR needs root")
    mount = tmp_path / "small-scratch"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _readiness(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


@ON_BOTH_BROKERS
def test_a_full_scratch_disk_delays_jobs_and_fails_none(fault_stack, batch, small_tmpfs, broker):
    metrics_port = free_ports_in_a_row(2)
    port = metrics_port + 1  # the first worker process's health
    stack = fault_stack(SCRATCH_DIR=small_tmpfs, SCRATCH_MIN_FREE_MB=2, WORKER_METRICS_PORT=metrics_port, MAX_RETRIES=2)
    jobs = batch(stack, f"full-scratch-disk-{broker}")
    for _ in range(6):
        jobs.add(jobs.source("large-photo-12mp.jpg"))  # 2.9 MB: more than the disk has left
    # Above the floor, but too little for a download: the fetch runs and meets ENOSPC.
    filler = _fill(small_tmpfs, leave=2 * MIB + MIB // 2)
    harness.start_workers(stack, processes=1, threads=2)
    stack.start_listener()
    wait_until(lambda: any(r["last_error"] for r in jobs.rows()), 60, "a step to meet the full disk")
    rows = stack.sql("SELECT id, status, retry_count, failure_reason, last_error FROM publish_jobs "
                     "WHERE last_error IS NOT NULL")
    assert [r for r in rows if r["status"] == "failed" or r["retry_count"]] == [], "a full disk charged a retry"
    assert {r["failure_reason"] for r in rows} == {"no_space"}, rows
    # Below the floor: the worker says it is not ready, and takes no first step. (Topped up
    # while waiting: a download that met the full disk frees its part when it gives up.)
    def below_the_floor():
        _fill(small_tmpfs, leave=MIB)
        return (r := _readiness(port))[0] == 503 and r

    status, body = wait_until(below_the_floor, 30, "/readyz to report the disk")
    assert "scratch" in body["checks"] and body["checks"]["scratch"] != "ok", body
    jobs.faults = len(jobs.expected)
    filler.unlink()  # space is back
    wait_until(lambda: _readiness(port)[0] == 200, 30, "/readyz to report the disk has room again")
    jobs.wait()
    result = jobs.outcome()
    result.assert_clean()
    assert result.completed == 6
    assert [(r["id"], r["last_error"]) for r in result.rows if r["retry_count"]] == []
    # Nothing of a worker writes on the scratch disk but the jobs' files: no process died of it.
    assert "exited unexpectedly" not in stack.logs()

"""Draining a worker host (issue 26), with real workers: the host finishes the job it had begun (its
later steps are bound to it), takes no new first step while it drains, and takes the waiting jobs
once it is resumed. One host of one worker thread, so every job in the test is this host's to take."""

import re
import shutil
import threading
import uuid

from devstack.origin import Fault
from devstack.ports import wait_until
from tests.conftest import CORPUS
from tests.system.test_admin import admin


def held_source(origin, origin_root) -> tuple[str, threading.Event]:
    """A fresh raid_key whose download the origin holds until the returned event is set."""
    key = f"drain-{uuid.uuid4().hex[:8]}.jpg"
    shutil.copy(CORPUS / "exif-orientation-1.jpg", origin_root / key)
    release = threading.Event()
    origin.faults[key] = Fault(hold=release, times=1)
    return key, release


def fetch_started(stack, job_id: int) -> bool:
    return re.search(rf"\bjob={job_id} file=\S+ stage=fetch started\b", stack.logs()) is not None


def test_a_draining_host_finishes_what_it_began_takes_nothing_new_and_takes_it_again_when_resumed(
        make_stack, origin, origin_root):
    stack = make_stack()
    stack.start_workers(processes=1, threads=1)
    stack.start_listener()
    beats = wait_until(lambda: stack.sql("SELECT host_id FROM publisher_workers"), 60, "the worker to beat")
    host = beats[0]["host_id"]

    key, release = held_source(origin, origin_root)
    try:
        begun = stack.publish(key)
        wait_until(lambda: stack.job(begun)["step_started_at"] is not None, 60, "the first job's fetch to begin")
        claimed = stack.publish("exif-orientation-6.jpg")  # claimed, its fetch waits for the only thread
        wait_until(lambda: stack.job(claimed)["status"] == "queued", 30, "the second job to be claimed")

        assert admin(stack, "host", "drain", host) == (
            0, f"changed: host {host} draining: it finishes the jobs it has begun and takes no new ones\n")
        # The listener claims nothing more for it at once; the host itself hears it at its next beat.
        assert stack.sql("SELECT sum(threads) AS n FROM publisher_workers")[0]["n"] == 0
        wait_until(lambda: "this host drains: it finishes the jobs it has begun" in stack.logs(), 30,
                   "the host to hear at its beat that it drains")
        requested = stack.publish("png-alpha.png")  # requested while the host drains
    finally:
        release.set()

    # The job it had begun runs its variant and upload there, to the end.
    assert stack.wait_for(begun)["status"] == "completed"
    # The claimed job's fetch is put off (back to the shared queue), never begun; nothing more is claimed.
    wait_until(lambda: f"job={claimed} stage=fetch put off: this host drains" in stack.logs(), 30,
               "the host to decline the claimed job's fetch")
    assert not fetch_started(stack, claimed)
    assert stack.job(claimed)["status"] == "queued" and stack.job(requested)["status"] == "pending"
    code, status = admin(stack, "status")
    assert code == 0 and re.search(rf"  {host}: .*; draining since .* 0 job\(s\) to finish", status), status

    assert admin(stack, "host", "resume", host)[0] == 0
    for job_id in (claimed, requested):
        assert stack.wait_for(job_id)["status"] == "completed"
    assert "this host no longer drains" in stack.logs()

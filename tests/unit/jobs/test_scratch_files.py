"""The scratch directory as the steps use it: a name read back from a job's
artifacts is untrusted (only plain names of regular files inside the attempt's
folder), files gone are told apart from bad names, a full disk is a typed
transient failure, and the host's default identity names its scratch directory."""

import errno
import hashlib
import os

import pytest

from publisher.errors import PermanentError, TransientError
from publisher.jobs import host_identity
from publisher.jobs.locality import host_queue
from publisher.jobs.scratch import NoSpace, Scratch, ScratchFilesMissing
from publisher.telemetry import failure_reason

JOB, TOKEN = 42, "0b7e7c1e-3c1a-4c55-9a77-1f2e3d4c5b6a"


@pytest.fixture
def scratch(tmp_path):
    s = Scratch(str(tmp_path / "scratch"))
    with s.create(JOB, TOKEN, "thumb.avif") as f:
        f.write(b"pixels")
    return s


@pytest.mark.parametrize("name", [
    "/etc/hostname", "../../outside", "nested/thumb.avif", "..", ".", "", "thumb.avif\0.txt", "./thumb.avif",
    "\\..\\x", "thumb.avif/", 7, None,
])
def test_a_name_that_is_not_a_plain_file_name_is_refused(scratch, name):
    for use in (scratch.open_staged, scratch.create, scratch.unlink):
        with pytest.raises(PermanentError) as e:
            use(JOB, TOKEN, name)
        assert failure_reason(e.value) == "bad_artifacts"


def test_a_symlink_in_the_attempt_folder_is_never_followed(scratch, tmp_path):
    host_file = tmp_path / "host-file"
    host_file.write_text("not ours")
    os.symlink(host_file, os.path.join(scratch.root, f"{JOB}-{TOKEN}", "display.avif"))
    with pytest.raises(PermanentError) as e:
        scratch.open_staged(JOB, TOKEN, "display.avif")
    assert failure_reason(e.value) == "bad_artifacts"
    assert host_file.read_text() == "not ours"


def test_an_attempt_folder_that_is_a_symlink_out_of_scratch_is_refused(tmp_path):
    s = Scratch(str(tmp_path / "scratch"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "thumb.avif").write_bytes(b"x")
    os.symlink(elsewhere, os.path.join(s.root, f"{JOB}-{TOKEN}"))
    with pytest.raises(PermanentError):
        s.open_staged(JOB, TOKEN, "thumb.avif")


def test_a_plain_name_resolves_inside_the_attempt_folder_and_is_read_with_its_hash(scratch):
    with scratch.open_staged(JOB, TOKEN, "thumb.avif") as staged:
        assert (staged.sha256, staged.size) == (hashlib.sha256(b"pixels").hexdigest(), 6)
        assert staged.file.read() == b"pixels"


def test_files_gone_from_the_scratch_are_missing_not_bad(scratch, tmp_path):
    with pytest.raises(ScratchFilesMissing) as e:
        scratch.open_staged(JOB, TOKEN, "display.avif")
    assert isinstance(e.value, TransientError) and failure_reason(e.value) == "scratch_missing"
    empty = Scratch(str(tmp_path / "emptied"))
    with pytest.raises(ScratchFilesMissing):
        empty.open_staged(JOB, TOKEN, "thumb.avif")
    # Looking did not make the attempt's folder.
    assert empty.attempts() == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_scratch_disk_is_a_typed_transient_failure(scratch, code):
    with pytest.raises(NoSpace) as e:
        with scratch.writing():
            raise OSError(code, os.strerror(code))
    assert isinstance(e.value, TransientError) and failure_reason(e.value) == "no_space"
    with pytest.raises(PermissionError):
        with scratch.writing():
            raise PermissionError(errno.EACCES, "denied")


def test_free_space_of_the_scratch_disk_is_measured(scratch):
    st = os.statvfs(scratch.root)
    assert 0 < scratch.free_space().bytes <= st.f_blocks * st.f_frsize


def test_the_default_host_id_names_the_scratch_directory_not_only_the_machine(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    for d in (a, b):
        os.makedirs(d)
    first = host_identity.default_host_id(a, "media-box")
    assert first == host_identity.default_host_id(a, "media-box")  # kept across restarts
    assert first != host_identity.default_host_id(b, "media-box")  # another worker group, same machine
    assert first.startswith("media-box-") and host_identity.HOST_ID.fullmatch(first)
    for entry in os.listdir(a):
        os.remove(os.path.join(a, entry))  # a container restarting with an empty volume
    assert host_identity.default_host_id(a, "media-box") != first


def test_a_long_or_odd_hostname_still_gives_a_valid_host_id_and_queue(tmp_path):
    host_id = host_identity.default_host_id(str(tmp_path), "x" * 300 + ".example.com")
    assert host_identity.HOST_ID.fullmatch(host_id)
    assert len(host_queue(host_id)) <= len("publish-host-") + 30
    assert host_identity.HOST_ID.fullmatch(host_identity.default_host_id(str(tmp_path), "name with spaces!"))


def test_a_scratch_directory_removed_under_a_running_worker_is_made_again(tmp_path):
    s = Scratch(str(tmp_path / "scratch"))
    os.rmdir(s.root)
    assert s.free_space().bytes > 0 and os.path.isdir(s.root)


def test_the_sweep_removes_only_attempt_folders_it_listed_and_leaves_other_folders_alone(scratch, tmp_path):
    root = tmp_path / "scratch"
    other = "7-00000000-0000-4000-8000-000000000000"
    os.makedirs(root / other)
    for name in ("123", "lost+found", "notes"):
        (root / name).mkdir()
    listed = scratch.attempts()
    assert scratch.sweep(listed, current={(JOB, TOKEN)}) == 1
    assert sorted(os.listdir(root)) == sorted([f"{JOB}-{TOKEN}", "123", "lost+found", "notes"])

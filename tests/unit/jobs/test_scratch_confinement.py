"""The scratch directory cannot be used to read, write or decode anything but the
attempt's own files, even by someone who can write into it: its root is ours
alone, an attempt's folder is never followed through a symlink, a staged file is
a regular file with one link, and the original decoded is the one fetched. The
host's id file, damaged, is replaced rather than stopping the host."""

import os
import shutil
import stat
import subprocess

import pytest

from publisher.errors import PermanentError
from publisher.jobs import host_identity
from publisher.jobs.host_faults import short_of_space
from publisher.jobs.scratch import Scratch, ScratchDirUnsafe, ScratchFilesChanged
from publisher.telemetry import failure_reason

JOB, TOKEN = 77, "5d0c6f0e-9b1a-4e22-8c33-0a1b2c3d4e5f"


def _write(scratch, name, data):
    with scratch.create(JOB, TOKEN, name) as f:
        f.write(data)


def test_a_scratch_dir_it_makes_is_private_to_the_worker(tmp_path):
    root = tmp_path / "parent" / "scratch"
    Scratch(str(root))
    st = os.lstat(root)
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o702])
def test_a_scratch_dir_others_may_write_into_is_refused_at_start(tmp_path, mode):
    root = tmp_path / "media-publisher"
    root.mkdir()
    os.chmod(root, mode)  # made first by another local user, or by a careless install
    with pytest.raises(ScratchDirUnsafe) as e:
        Scratch(str(root))
    assert str(root) in str(e.value) and "writable" in str(e.value)


def test_a_scratch_dir_that_is_a_symlink_is_refused_at_start(tmp_path):
    target = tmp_path / "somewhere"
    target.mkdir(mode=0o700)
    os.symlink(target, tmp_path / "scratch")
    with pytest.raises(ScratchDirUnsafe) as e:
        Scratch(str(tmp_path / "scratch"))
    assert "symlink" in str(e.value)


def test_a_scratch_dir_owned_by_another_user_is_refused_at_start(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the directory away")
    root = tmp_path / "scratch"
    root.mkdir(mode=0o700)
    os.chown(root, 65534, 65534)
    with pytest.raises(ScratchDirUnsafe) as e:
        Scratch(str(root))
    assert "owned" in str(e.value)


def test_a_write_into_an_attempt_folder_that_is_a_symlink_never_lands_outside_scratch(tmp_path):
    s = Scratch(str(tmp_path / "scratch"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, os.path.join(s.root, f"{JOB}-{TOKEN}"))
    with pytest.raises(PermanentError) as e:
        _write(s, "thumb.webp", b"variant bytes")
    assert failure_reason(e.value) == "bad_artifacts"
    assert os.listdir(elsewhere) == []


def test_an_attempt_folder_swapped_for_a_symlink_after_it_was_made_is_not_read_through(tmp_path):
    s = Scratch(str(tmp_path / "scratch"))
    _write(s, "thumb.webp", b"ours")
    folder = os.path.join(s.root, f"{JOB}-{TOKEN}")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "thumb.webp").write_bytes(b"a host file")
    shutil.rmtree(folder)
    os.symlink(elsewhere, folder)
    with pytest.raises(PermanentError):
        s.open_staged(JOB, TOKEN, "thumb.webp")
    with pytest.raises(PermanentError):
        s.unlink(JOB, TOKEN, "thumb.webp")
    assert (elsewhere / "thumb.webp").read_bytes() == b"a host file"


def test_a_staged_file_that_is_a_hard_link_is_refused(tmp_path):
    s = Scratch(str(tmp_path / "scratch"))
    _write(s, "display.avif", b"placeholder")
    secret = tmp_path / "secret"
    secret.write_bytes(b"another file's bytes")
    folder = os.path.join(s.root, f"{JOB}-{TOKEN}")
    os.unlink(os.path.join(folder, "display.avif"))
    os.link(secret, os.path.join(folder, "display.avif"))
    with pytest.raises(PermanentError) as e:
        s.open_staged(JOB, TOKEN, "display.avif")
    assert failure_reason(e.value) == "bad_artifacts"
    # Writing the attempt's file again replaces the link, never writes through it.
    _write(s, "display.avif", b"variant")
    assert secret.read_bytes() == b"another file's bytes"


def test_a_source_swapped_after_its_fetch_is_not_decoded_and_starts_the_job_over(tmp_path):
    s = Scratch(str(tmp_path / "scratch"))
    _write(s, "source", b"\xff\xd8\xff the original")
    fetched = s.open_staged(JOB, TOKEN, "source")
    fetched.file.close()
    folder = os.path.join(s.root, f"{JOB}-{TOKEN}")
    os.unlink(os.path.join(folder, "source"))
    with open(os.path.join(folder, "source"), "wb") as f:
        f.write(b"\xff\xd8\xff something else")
    with pytest.raises(ScratchFilesChanged) as e:
        s.open_source(JOB, TOKEN, "source", fetched.sha256)
    assert failure_reason(e.value) == "scratch_changed"
    with s.open_source(JOB, TOKEN, "source", s.open_staged(JOB, TOKEN, "source").sha256) as read:
        assert open(read.path, "rb").read() == b"\xff\xd8\xff something else"


@pytest.mark.parametrize("damage", [b"", b"\x00\x00\x00\x00", b"not-hex!\n", b"0123"])
def test_a_damaged_host_id_file_is_replaced_by_a_new_id_and_the_worker_boots(tmp_path, damage, caplog):
    path = tmp_path / host_identity.IDENTITY_FILE
    path.write_bytes(damage)
    kept = host_identity.scratch_identity(str(tmp_path))
    assert host_identity._IDENTITY.fullmatch(kept)
    assert path.read_text().strip() == kept
    assert host_identity.scratch_identity(str(tmp_path)) == kept
    assert "host id" in caplog.text.lower()
    assert [p for p in os.listdir(tmp_path) if p != host_identity.IDENTITY_FILE] == []


def test_an_unreadable_host_id_file_is_replaced(tmp_path):
    os.mkdir(tmp_path / host_identity.IDENTITY_FILE)  # not a file at all
    kept = host_identity.scratch_identity(str(tmp_path))
    assert host_identity._IDENTITY.fullmatch(kept)
    assert (tmp_path / host_identity.IDENTITY_FILE).read_text().strip() == kept


@pytest.fixture
def few_inodes(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tmpfs"
    mount.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,nr_inodes=600,mode=0700", "tmpfs", str(mount)],
                   check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


class _Runtime:
    def __init__(self, scratch):
        self.scratch = scratch

        class settings:
            scratch_min_free_mb = 1

        self.settings = settings


def test_a_scratch_disk_out_of_inodes_is_short_of_space_and_not_ready(few_inodes):
    from publisher.observability.worker_health import scratch_space_check
    s = Scratch(str(few_inodes / "scratch"))
    rt = _Runtime(s)
    assert not short_of_space(rt)
    n = 0
    while True:  # plenty of bytes left, no files
        try:
            open(few_inodes / f"f{n}", "wb").close()
        except OSError:
            break
        n += 1
    assert os.statvfs(s.root).f_bavail * os.statvfs(s.root).f_frsize > 32 * 2**20
    assert short_of_space(rt)
    with pytest.raises(RuntimeError) as e:
        scratch_space_check(s, 2**20)()
    assert "inode" in str(e.value) or "files" in str(e.value)


def test_a_scratch_dir_opened_to_others_while_running_takes_no_first_step_and_is_not_ready(tmp_path):
    from publisher.observability.worker_health import scratch_space_check
    s = Scratch(str(tmp_path / "scratch"))
    os.chmod(s.root, 0o777)
    assert short_of_space(_Runtime(s))
    with pytest.raises(ScratchDirUnsafe):
        scratch_space_check(s, 1)()

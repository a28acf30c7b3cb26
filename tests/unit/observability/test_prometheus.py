"""The worker metrics' run directories."""

import os

from publisher.observability import prometheus as metrics


def test_stale_metric_runs_are_wiped_and_live_ones_kept(tmp_path):
    mine = tmp_path / metrics.run_id(os.getpid())
    dead = tmp_path / "999999999-5"  # above pid_max: no such process
    reused = tmp_path / f"{os.getpid()}-1"  # this pid, but an earlier process (pid 1 in a restarted container)
    other = tmp_path / "notes"  # not a run directory: left alone
    for d in (mine, dead, reused, other):
        d.mkdir()
        (d / "counter_1.db").write_bytes(b"x")
    removed = metrics.wipe_stale_runs(str(tmp_path), keep=str(tmp_path / "123"))
    assert sorted(removed) == sorted([str(dead), str(reused)])
    assert mine.exists() and other.exists() and not dead.exists() and not reused.exists()
    assert "-" in mine.name  # Linux: the start time is part of the name

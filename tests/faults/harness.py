"""What every fault scenario shares: a batch of jobs with the outcome each
should reach, the accounting of what actually happened (completed, failed as
expected, lost, stuck, duplicated), and the processes under test."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import sys
import threading
import uuid
from pathlib import Path

from devstack import procs
from devstack.ports import wait_until

#: Where the summary lines of a run are collected (printed at the end of the run).
SUMMARY_FILE = Path(os.environ.get("FAULT_SUMMARY_FILE", Path(procs.ROOT) / ".run" / "fault-summary.txt"))
SUMMARY: list[str] = []

TERMINAL = ("completed", "failed")

#: raid_key markers acted on by the test-only worker hooks (tests/faults/worker_hooks.py).
KILL_MARK = "kill-worker"
LEAK_MARK = "leak-secrets"
UPLOAD_FAILS_ONCE_MARK = "upload-fails-once"
FAILURE_NOT_RECORDED_MARK = "failure-not-recorded"
END_STEP_FAILS_ONCE_MARK = "end-step-fails-once"
DELETED_WHILE_RUNNING_MARK = "deleted-while-running"
HANG_MARK = "hangs-in-native-code"
SYMLINK_MARK = "scratch-file-swapped-for-a-symlink"
RESTART_AFTER_FETCH_MARK = "host-restarted-after-fetch"
SOURCE_SWAPPED_MARK = "source-swapped-after-fetch"
#: The image a SOURCE_SWAPPED_MARK job's original is replaced with (a file the test names).
SWAPPED_SOURCE_ENV = "FAULT_SWAPPED_SOURCE"
#: A file whose creation makes RESTART_AFTER_FETCH_MARK fire once only (the job's fetch runs again after it).
RESTART_ONCE_ENV = "FAULT_RESTART_ONCE_FILE"
#: Where a SYMLINK_MARK job's staged thumb points instead (a host file the test made).
SYMLINK_TARGET_ENV = "FAULT_SYMLINK_TARGET"
#: How long a HANG_MARK step sleeps in native code.
HANG_SECONDS = 30

#: Settings every fault stack runs with: leases of a few seconds so rescue is quick.
FAST_ENV = {
    "JOB_LEASE_SECONDS": "5",
    "JOB_HANDOFF_SECONDS": "60",
    "WORKER_POLL_INTERVAL": "1000",
    "RETRY_MIN_BACKOFF_MS": "200",
    "RETRY_MAX_BACKOFF_MS": "2000",
    "ORIGIN_READ_TIMEOUT": "5",
    "VARIANTS": "thumb:200,display:600",
}


@dataclasses.dataclass
class Outcome:
    scenario: str
    jobs: int
    faults: int
    completed: int
    failed: int
    unexpected: int
    lost: int
    stuck: int
    duplicated: int
    rows: list
    #: What the scenario measured besides the accounting (a restart's cost, dead tuples...).
    figures: str = ""

    def line(self) -> str:
        return (f"{self.scenario:<34} jobs={self.jobs:<3} faults={self.faults:<3} completed={self.completed:<3} "
                f"failed(expected)={self.failed:<3} unexpected={self.unexpected} lost={self.lost} "
                f"stuck={self.stuck} duplicated={self.duplicated}" + (f" {self.figures}" if self.figures else ""))

    def assert_clean(self):
        problems = [r for r in self.rows if r["problem"]]
        assert (self.unexpected, self.lost, self.stuck, self.duplicated) == (0, 0, 0, 0), (
            self.line() + "\n" + "\n".join(
                f"job {r['id']} {r['raid_key']}: {r['problem']} (status={r['status']} "
                f"retry_count={r['retry_count']} last_error={r['last_error']!r})" for r in problems))


class Batch:
    """Jobs of one scenario, each with the status it must end in."""

    def __init__(self, stack, scenario: str, origin_root: Path):
        self.stack, self.scenario, self.origin_root = stack, scenario, origin_root
        self.expected: dict[int, str] = {}
        self.faults = 0

    def source(self, fixture: str, tag: str = "") -> str:
        """A fresh raid_key holding a copy of a corpus file (per-key faults stay per-job)."""
        from tests.conftest import CORPUS

        key = f"{self.scenario}-{tag}{uuid.uuid4().hex[:8]}{Path(fixture).suffix}"
        shutil.copy(CORPUS / fixture, self.origin_root / key)
        return key

    def add(self, raid_key: str, expect: str = "completed", max_retries: int | None = None,
            file_id: str | None = None) -> int:
        """A job for a new file of raid_key (or for an existing file: a re-run)."""
        file_id = file_id or self.stack.add_file(raid_key)
        if max_retries is None:
            job_id = self.stack.request_publish(file_id)
        else:
            job_id = self.stack.sql("INSERT INTO publish_jobs (file_id, max_retries) VALUES (%s, %s) RETURNING id",
                                    (file_id, max_retries))[0]["id"]
        self.expected[job_id] = expect
        return job_id

    def rows(self) -> list[dict]:
        return self.stack.sql(
            """SELECT j.id, j.status, j.retry_count, j.max_retries, j.last_error, j.file_id::text AS file_id,
                      f.raid_key, f.publish_status, f.variants, f.published_at,
                      (SELECT count(*) FROM publish_job_events e
                        WHERE e.job_id = j.id AND e.to_status = 'completed') AS completions
                 FROM publish_jobs j JOIN auction_files f ON f.id = j.file_id
                WHERE j.id = ANY(%s) ORDER BY j.id""", (list(self.expected),))

    def wait(self, timeout: float = 180) -> None:
        """Until every job is completed or failed (or the timeout: those left are stuck)."""
        def settled():
            return all(r["status"] in TERMINAL for r in self.rows())

        try:
            wait_until(settled, timeout, f"{self.scenario}: every job to settle", 0.25)
        except TimeoutError:
            pass

    def outcome(self, figures: str = "") -> Outcome:
        counts = dict(completed=0, failed=0, unexpected=0, lost=0, stuck=0, duplicated=0)
        rows = self.rows()
        for row in rows:
            row["problem"] = self._problem(row, counts)
        result = Outcome(self.scenario, len(rows), self.faults, rows=rows, figures=figures, **counts)
        record_line(result.line())
        return result

    def _problem(self, row, counts) -> str | None:
        expect = self.expected[row["id"]]
        if row["status"] not in TERMINAL:
            counts["stuck"] += 1
            return "stuck"
        if row["completions"] > 1:
            counts["duplicated"] += 1
            return f"completed {row['completions']} times"
        if row["status"] == "completed":
            # Exactly the published objects are in the bucket: one per variant, no second copy.
            keys = self.stack.keys(f"media/{row['file_id']}/")
            published = sorted(v["key"] for v in (row["variants"] or {}).values())
            if row["publish_status"] != "published" or not published or any(k not in keys for k in published):
                counts["lost"] += 1
                return f"completed but objects missing: {published} vs {keys}"
            if keys != published:
                counts["duplicated"] += 1
                return f"objects differ between runs: {keys}"
            if expect != "completed":
                counts["unexpected"] += 1
                return "completed although it should have failed"
            counts["completed"] += 1
            return None
        # A failed job leaves a file that was published before as it was.
        was_published = row["published_at"] is not None and row["variants"] is not None
        if row["publish_status"] != ("published" if was_published else "failed"):
            counts["lost"] += 1
            return f"job failed but file is {row['publish_status']}"
        if expect == "completed":
            counts["lost"] += 1
            return "failed although it should have completed"
        counts["failed"] += 1
        return None


def record_line(line: str) -> None:
    """One line of the fault summary (printed at the end of the run, and kept in SUMMARY_FILE)."""
    SUMMARY.append(line)
    SUMMARY_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(SUMMARY_FILE, "a") as f:
        f.write(line + "\n")


def start_workers(stack, processes: int = 2, threads: int = 3, shutdown_timeout_ms: int = 30000,
                  hooks: bool = False, env: dict | None = None, module: str = "actors") -> procs.Process:
    """The worker command of the Procfile, optionally with the test-only fault hooks
    and settings of their own (another SCRATCH_DIR: another host)."""
    modules = [module] + (["tests.faults.worker_hooks"] if hooks else [])
    args = [str(procs.BIN / "dramatiq"), *modules, "--processes", str(processes), "--threads", str(threads),
            "--worker-shutdown-timeout", str(shutdown_timeout_ms)]
    proc = procs.Process("workers", args, {**stack.env, **(env or {})},
                         stack.tmp / f"workers-{uuid.uuid4().hex[:6]}.log")
    stack.extra_processes.append(proc)
    return proc


def run_marked_batch(stack, jobs: Batch, source: str, mark: str, count: int = 3,
                     expect: str = "completed") -> tuple[Outcome, procs.Process]:
    """`count` jobs whose raid_key carries a worker-hook mark, run to the end by hooked
    workers and a listener; the clean outcome and the workers (for their log)."""
    for _ in range(count):
        jobs.add(jobs.source(source, mark + "-"), expect=expect)
    jobs.faults = count
    workers = start_workers(stack, hooks=True)
    stack.start_listener()
    jobs.wait()
    result = jobs.outcome()
    result.assert_clean()
    return result, workers


class Supervisor:
    """Restarts the workers whenever they exit, as systemd or Kubernetes would."""

    def __init__(self, stack, **worker_args):
        self.stack, self.worker_args = stack, worker_args
        self.restarts = 0
        self.current = start_workers(stack, **worker_args)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self):
        while not self._stop.wait(0.2):
            if not self.current.running():
                self.restarts += 1
                self.current = start_workers(self.stack, **self.worker_args)

    def stop(self):
        self._stop.set()
        self._thread.join()
        self.current.stop()


def stop_all(stack) -> None:
    for proc in stack.extra_processes:
        if proc.running():
            proc.stop()


def kill9(proc: procs.Process) -> None:
    proc.signal(signal.SIGKILL)
    proc.popen.wait()


def terminate_connections(stack) -> int:
    """pg_terminate_backend on every connection to the stack's database except this one."""
    rows = stack.sql("""SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
                         WHERE datname = current_database() AND pid <> pg_backend_pid()""")
    return rows[0]["n"]


def python() -> str:
    return sys.executable

"""py-spy on the worker processes while they publish a burst of 12 MP jobs,
then the share of samples under each function of interest:

    python -m bench.profile_workers [JOBS]        (needs the bench extra: py-spy)

This is how the connection churn of step 2 in BENCHMARKS.md was found
(12 % of the samples in psycopg2.connect).
"""

from __future__ import annotations

import collections
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import inputs
from .system import Services, add_files, wait_done, worker_pids

#: Frames worth a line in the summary (substring of py-spy's "function (file:line)").
FRAMES = ("actors/fetch.py", "actors/variant.py", "actors/upload.py", "publisher/imaging/", "copy_memory",
          "_encode_webp", "Storage.put_stream", "Storage.get_bytes", "Storage.size_of",
          "OriginClient.download", "Database.transaction", "psycopg2/pool.py", "connect (psycopg2",
          "JobLifecycle", "PostgresConsumer", "sha256_hash", "Runtime.cleanup")


def record(jobs: int, out_dir: Path) -> list[Path]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    services = Services({"photo-12mp.jpg": inputs.photo(12)})
    try:
        with services.system() as stack:
            outputs, spies = [], []
            for pid in worker_pids(stack):
                outputs.append(out_dir / f"worker-{pid}.folded")
                spies.append(subprocess.Popen([py_spy, "record", "-p", str(pid), "--format", "raw", "--rate", "100",
                                               "--nonblocking", "-o", str(outputs[-1])]))
            time.sleep(1)  # py-spy attaches
            job_ids = [stack.request_publish(f) for f in add_files(stack, "photo-12mp.jpg", jobs)]
            wait_done(stack, job_ids, timeout=1800)
            for spy in spies:
                spy.send_signal(signal.SIGINT)
                spy.wait()
            return outputs
    finally:
        services.close()


def summary(folded: list[Path]) -> str:
    total, hits = 0, collections.Counter()
    for path in folded:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            total += int(count)
            for frame in FRAMES:
                if frame in stack:
                    hits[frame] += int(count)
    lines = [f"{total} samples; share of samples with the frame on the stack:"]
    lines += [f"  {count / total * 100:5.1f} %  {frame}" for frame, count in hits.most_common()]
    return "\n".join(lines)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(summary(record(int(sys.argv[1]) if len(sys.argv) > 1 else 60, Path(tmp))))

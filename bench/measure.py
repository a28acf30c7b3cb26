"""What a benchmark subprocess measures about itself, and how the parent reads a child's totals."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time


def status_kb(field: str, pid: int | str = "self") -> int:
    """A field of /proc/<pid>/status in kB (VmRSS: now, VmHWM: peak)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def report(work) -> None:
    """Runs `work` once and prints its CPU time (all threads) and the RSS before it, as JSON.

    The imports are done before: CPU spent starting the interpreter is counted by
    the parent in the process total, not here.
    """
    rss_before = status_kb("VmRSS")
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter()
    outputs = work()
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"work_cpu_s": cpu, "work_wall_s": wall, "rss_before_work_mb": rss_before / 1024,
                      "outputs": outputs}))


def run_child(args: list[str], env: dict | None = None, cwd: str | None = None) -> dict:
    """Runs one fresh process; returns what it printed plus its own totals (os.wait4:
    this child only): CPU seconds from exec to exit and peak RSS."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {proc.returncode}: {err.decode(errors='replace')[-2000:]}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # ru_maxrss is in kB on Linux
    return result

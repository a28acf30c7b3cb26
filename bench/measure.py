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
    """Runs `work` once and prints its CPU time (all threads), the RSS before it
    and the process's peak RSS, as JSON.

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
                      "peak_rss_mb": status_kb("VmHWM") / 1024, "outputs": outputs}))


def run_child(args: list[str], env: dict | None = None, cwd: str | None = None) -> dict:
    """Runs one fresh process; returns what it printed plus its CPU seconds from exec
    to exit (os.wait4: this child only).

    The peak RSS is the child's own VmHWM, which it prints: wait4's ru_maxrss is no
    good here, because Linux carries the parent's RSS into the child's maximum
    across fork (vfork) and exec, so every child looked at least as big as this
    process (128.8 MB for sharp and ours alike once this process had made the
    24 MP input: measured 2026-11-30)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {proc.returncode}: {err.decode(errors='replace')[-2000:]}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    return result

"""Memory: peak RSS of the worker processes while they publish one 100 MP JPEG,
then a burst of 24 MP ones.

Each worker process's resident set is read from /proc/<pid>/status: VmRSS once
the workers are ready (the baseline), VmHWM (the peak) after the jobs. Between
the two phases the peak is reset (writing 5 to /proc/<pid>/clear_refs), so the
burst's figure is its own.
"""

from __future__ import annotations

from .measure import status_kb
from .system import add_files, loadavg, wait_done, worker_pids


def _reset_peaks(pids):
    for pid in pids:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")


def _phase(stack, pids, baseline_kb, raid_key: str, n: int) -> dict:
    _reset_peaks(pids)
    load = loadavg()
    job_ids = [stack.request_publish(f) for f in add_files(stack, raid_key, n)]
    wait_done(stack, job_ids, timeout=1800)
    peaks = {pid: status_kb("VmHWM", pid) for pid in pids}
    growth = {pid: (peaks[pid] - baseline_kb[pid]) / 1024 for pid in pids}
    return {"image": raid_key, "jobs": n, "peak_rss_mb": max(peaks.values()) / 1024,
            "max_growth_mb": max(growth.values()),
            "per_process": {str(pid): {"baseline_mb": baseline_kb[pid] / 1024, "peak_mb": peaks[pid] / 1024}
                            for pid in pids},
            "loadavg": load}


def worker_memory(stack, big_key: str, burst_key: str, burst: int) -> dict:
    pids = worker_pids(stack)
    baseline = {pid: status_kb("VmRSS", pid) for pid in pids}
    return {"baseline_rss_mb": max(baseline.values()) / 1024,
            "single": _phase(stack, pids, baseline, big_key, 1),
            "burst": _phase(stack, pids, baseline, burst_key, burst)}

"""A CPU budget for the processes of one host (a Linux cgroup's CPU quota).

Hosts made of network namespaces share the machine's cores with each other and
with the services they all use; a real deployment gives each worker host
machine its own cores. A quota of N cores per host reproduces that: a host can
use no more than N cores, however busy the others are, and what is left of the
machine stays for PostgreSQL, S3 and the origin. Used by `make bench-scale`.

Needs root, and either cgroup v2 with the cpu controller or v1's cpu hierarchy.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

#: Scheduler period the quota is counted in (CFS's default).
PERIOD_US = 100_000
V1 = Path("/sys/fs/cgroup/cpu")
V2 = Path("/sys/fs/cgroup")


class CpuLimit:
    def __init__(self, name: str, cores: float):
        if cores <= 0:
            raise ValueError(f"a CPU budget must be above 0 cores, not {cores}")
        self.cores = cores
        leaf = f"media-publisher-{name}-{uuid.uuid4().hex[:6]}"
        if (V2 / "cgroup.controllers").exists() and "cpu" in (V2 / "cgroup.controllers").read_text().split():
            self.path, self.v2 = V2 / leaf, True
        elif (V1 / "cpu.cfs_quota_us").exists():
            self.path, self.v2 = V1 / leaf, False
        else:
            raise RuntimeError("no cgroup CPU controller here (/sys/fs/cgroup): cannot give hosts a CPU budget")

    def create(self) -> CpuLimit:
        self.path.mkdir()
        quota = round(self.cores * PERIOD_US)
        if self.v2:
            (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        return self

    def wrap(self, args: list[str]) -> list[str]:
        """`args`, run inside the budget: the shell joins the cgroup, then becomes the command,
        so the command and every process it starts are counted from their first instruction."""
        return ["/bin/sh", "-c", 'echo $$ > "$1" && shift && exec "$@"', "sh", str(self.path / "cgroup.procs"), *args]

    def remove(self) -> None:
        """Removes the cgroup once its processes are gone; safe to call twice."""
        try:
            os.rmdir(self.path)
        except FileNotFoundError:
            pass

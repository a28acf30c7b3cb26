"""A worker host's scratch directory (SCRATCH_DIR): one folder per job attempt,
`<job id>-<attempt token>`, where the steps of the attempt pass the original and
the variants to each other.

An attempt's folder is removed when its job is finalized or fails for good. A
folder whose attempt is no longer the job's current one on this host (the job
was rescued, re-run or taken over, or the process that held it died) is removed
by the sweep each worker process runs at start and then periodically.
"""

from __future__ import annotations

import os
import re
import shutil

#: An attempt's folder: job id and attempt token.
ATTEMPT = re.compile(r"(\d+)-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
#: Folders of the release that kept files by job id only.
LEGACY = re.compile(r"\d+")


class Scratch:
    def __init__(self, root: str):
        self.root = root
        os.makedirs(root, exist_ok=True)

    def path(self, job_id: int, token: str, name: str) -> str:
        """A file of the attempt; its folder is made on first use."""
        folder = os.path.join(self.root, f"{job_id}-{token}")
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, name)

    def remove(self, job_id: int, token: str) -> None:
        shutil.rmtree(os.path.join(self.root, f"{job_id}-{token}"), ignore_errors=True)

    def attempts(self) -> list[tuple[int, str]]:
        """The attempts that have a folder here."""
        return [(int(m.group(1)), m.group(2)) for m in map(ATTEMPT.fullmatch, os.listdir(self.root)) if m]

    def sweep(self, listed: list[tuple[int, str]], current: set[tuple[int, str]]) -> int:
        """Removes the folders of the attempts `listed` (by attempts(), before `current` was
        read) that are not `current`, and the legacy folders; returns how many. A folder made
        after the listing is left alone: its attempt may have begun since."""
        gone = [f"{job}-{token}" for job, token in listed if (job, token) not in current]
        gone += [name for name in os.listdir(self.root) if LEGACY.fullmatch(name)]
        for name in gone:
            shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
        return len(gone)

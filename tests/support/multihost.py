"""A publishing system whose processes run on several hosts (network
namespaces, devstack/netns.py): one database, one bucket, one origin and,
with RabbitMQ, one vhost, reached by every host over its own network link."""

from __future__ import annotations

import hashlib
import re

from devstack.netns import Hosts
from tests.support.stack import Stack


class MultiHost:
    def __init__(self, stack: Stack, hosts: Hosts):
        self.stack, self.hosts = stack, hosts

    def env_for(self, name: str, **extra) -> dict:
        return self.hosts[name].env({**self.stack.env, **{k: str(v) for k, v in extra.items()}})

    def start_host(self, name: str, *, listener: bool = True, processes: int = 1, threads: int = 2,
                   queues=(), **extra_env) -> None:
        """Starts a host's processes as an operator would: a listener (optional) and workers."""
        host = self.hosts[name]
        env = self.env_for(name, **extra_env)
        host.start_workers(env, processes, threads, queues)
        if listener:
            host.start_listener(env)

    def logs(self, name: str) -> str:
        return self.hosts[name].logs()

    def running_step(self, name: str, jobs) -> int | None:
        """A job whose fetch host `name` has started and not finished, as the database also says."""
        log = self.logs(name)
        for job_id in jobs:
            if (step_events(log, job_id, "fetch", "started") and not step_events(log, job_id, "fetch", "done")
                    and self.stack.job(job_id)["stage"] == "fetch"):
                return job_id
        return None

    def running_in_database(self, name: str, jobs) -> set[int]:
        """The jobs whose step the database records as running on host `name`:
        the ones its death should charge an attempt."""
        rows = self.stack.sql("SELECT id FROM publish_jobs WHERE id = ANY(%s) AND host_id = %s "
                              "AND status = 'processing' AND step_started_at IS NOT NULL",
                              (list(jobs), self.hosts[name].host_id))
        return {row["id"] for row in rows}

    def step_runs(self, name: str, job_id: int, stage: str) -> int:
        """How many times `stage` of the job started on host `name`."""
        return step_events(self.logs(name), job_id, stage, "started")


def step_events(log: str, job_id: int, stage: str, event: str) -> int:
    """Job log lines read `job=ID file=UUID stage=STAGE EVENT ...`."""
    return len(re.findall(rf"\bjob={job_id} (?:file=\S+ )?stage={stage} {event}\b", log))


def published_objects(stack: Stack, job_id: int) -> dict:
    """What a completed job put on the CDN, independent of its file id:
    per variant, the key's last part (name and content hash), size and bytes' sha256."""
    job = stack.job(job_id)
    objects = {}
    for name, v in job["variants"].items():
        data, headers = stack.object(v["key"])
        objects[name] = {
            "key_name": v["key"].rsplit("/", 1)[1], "width": v["width"], "height": v["height"],
            "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "content_type": headers["Content-Type"],
        }
    return objects

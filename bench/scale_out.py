"""Scale-out benchmark: the same burst on one host and on two, on each broker.

    make bench-scale                      # both brokers, 40 jobs per burst, 0.5 cores per host
    python -m bench.scale_out --jobs 60 --brokers rabbitmq

Hosts are network namespaces (devstack/netns.py), as in tests/system/test_multihost.py;
each runs one worker process with one thread and one libvips thread
(VIPS_CONCURRENCY=1). Each host also gets a CPU budget of --host-cpus cores (a
cgroup quota, devstack/cpulimit.py; 0.5 by default): two unbudgeted hosts take
both cores and starve PostgreSQL, SeaweedFS, RabbitMQ and the origin that every
job also needs, which real worker machines would not share (measured: steps 20 %
slower on two hosts than on one, 1.66x). With 0.5 each, two hosts use one core and
the services keep the other, as separate machines would; --host-cpus 0 measures
without budgets. The listener runs on the machine itself in both runs. Reported
per broker:

- intake: jobs/s from one INSERT of --intake pending jobs to all of them
  claimed and in the broker (listener only, no workers);
- throughput: jobs/s from one INSERT of --jobs jobs to the last one completed,
  on one host and on two, and their ratio (goal >= 1.8).

The machine is shared: /proc/loadavg is printed with every figure. Needs root.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from devstack import postgres
from devstack.netns import Hosts
from devstack.origin import Origin
from devstack.ports import wait_until
from devstack.s3 import SeaweedS3
from tests.support.multihost import MultiHost
from tests.support.stack import TOKEN, Stack

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "corpus"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_seconds(host) -> float:
    """User + system CPU seconds of the processes running in a host (its workers)."""
    total = 0.0
    for pid in host.pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def insert_burst(stack: Stack, raid_key: str, n: int) -> float:
    """n files and one job each, in one transaction; returns when it was committed."""
    stack.sql(
        "WITH f AS (INSERT INTO auction_files (raid_key) SELECT %s FROM generate_series(1, %s) RETURNING id) "
        "INSERT INTO publish_jobs (file_id) SELECT id FROM f", (raid_key, n))
    return time.monotonic()


def count(stack: Stack, where: str) -> int:
    return stack.sql(f"SELECT count(*) AS n FROM publish_jobs WHERE {where}")[0]["n"]


def workdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def measure_intake(services, broker: str, n: int, tmp: Path) -> dict:
    stack = Stack(*services, workdir(tmp / f"intake-{broker}"), broker=broker, WORKER_POLL_INTERVAL=15000)
    try:
        # No workers: the listener's claim-and-enqueue rate alone. A stand-in worker row gives
        # it room for every job (it claims only what live workers can start).
        stack.sql("INSERT INTO publisher_workers (worker_id, host_id, queue, threads, seen_at) "
                  "VALUES ('intake-bench', 'intake-bench', 'publish-host-intake-bench', %s, "
                  "now() + interval '1 hour')", (n,))
        stack.start_listener()
        wait_until(lambda: "listening on channel" in stack.listener.log(), 60, "the listener")
        started = insert_burst(stack, "never-fetched.jpg", n)
        wait_until(lambda: count(stack, "status = 'pending'") == 0, 600, "every job claimed", 0.02)
        seconds = time.monotonic() - started
        return {"jobs": n, "seconds": round(seconds, 2), "jobs_per_s": round(n / seconds, 1), "loadavg": loadavg()}
    finally:
        stack.stop()


def measure_burst(services, broker: str, hosts: int, n: int, image: str, tmp: Path, host_cpus: float) -> dict:
    names = ["a", "b"][:hosts]
    stack = Stack(*services, workdir(tmp / f"burst-{broker}-{hosts}"), broker=broker)
    try:
        with Hosts(names, tmp / f"hosts-{broker}-{hosts}", cores_per_host=host_cpus or None) as netns:
            cluster = MultiHost(stack, netns)
            for name in names:
                cluster.start_host(name, listener=False, processes=1, threads=1, VIPS_CONCURRENCY=1)
            for name in names:
                wait_until(lambda name=name: "ready for action" in cluster.logs(name), 120, f"host {name}'s worker")
            stack.start_listener()
            wait_until(lambda: "listening on channel" in stack.listener.log(), 60, "the listener")
            before = loadavg()
            cpu_at_start = sum(cpu_seconds(netns[name]) for name in names)
            started = insert_burst(stack, image, n)
            wait_until(lambda: count(stack, "status IN ('completed', 'failed')") == n, 1800, "the burst", 0.1)
            seconds = time.monotonic() - started
            failed = count(stack, "status = 'failed'")
            cpu = sum(cpu_seconds(netns[name]) for name in names) - cpu_at_start
            logs = {name: cluster.logs(name) for name in names}
            per_host = {name: log.count("stage=variant done") for name, log in logs.items()}
            step_seconds = {name: sum(map(float, re.findall(r"stage=\w+ done in ([0-9.]+)s", log)))
                            for name, log in logs.items()}
            return {"hosts": hosts, "jobs": n, "failed": failed, "seconds": round(seconds, 2),
                    "jobs_per_s": round(n / seconds, 2), "variants_per_host": per_host,
                    # Share of the burst each worker thread spent in steps (the rest: waiting for messages).
                    "busy": {name: round(t / seconds, 2) for name, t in step_seconds.items()},
                    # Wall time of the steps of one job: grows when the CPU is contended.
                    "step_seconds_per_job": round(sum(step_seconds.values()) / n, 3),
                    # CPU the hosts' workers used per job, and per host and second (at most --host-cpus).
                    "worker_cpu_seconds_per_job": round(cpu / n, 3),
                    "worker_cores_per_host": round(cpu / seconds / hosts, 2),
                    "loadavg_before": before, "loadavg_after": loadavg()}
    finally:
        stack.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=40, help="jobs per burst (default 40)")
    parser.add_argument("--intake", type=int, default=1000, help="jobs for the intake figure (default 1000)")
    parser.add_argument("--image", default="large-photo-12mp.jpg", help="corpus image every job publishes")
    parser.add_argument("--brokers", default="postgres,rabbitmq")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each burst, alternating one and two hosts; the fastest counts (default 2)")
    parser.add_argument("--host-cpus", type=float, default=0.5,
                        help="CPU budget of each host in cores (a cgroup quota); 0: none (default 0.5)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    pg = postgres.start(tmp / "pg")
    s3 = SeaweedS3(tmp / "seaweed", bucket="media").start()
    raid = tmp / "raid"
    raid.mkdir()
    shutil.copy(CORPUS / args.image, raid / args.image)
    origin = Origin(raid, TOKEN).start()
    services = (pg, s3, origin)
    results = {"cpus": len(Path("/proc/cpuinfo").read_text().split("processor")) - 1, "image": args.image,
               "host_cpus": args.host_cpus}
    try:
        for broker in args.brokers.split(","):
            print(f"[{broker}] intake of {args.intake} jobs ...", flush=True)
            intake = measure_intake(services, broker, args.intake, tmp)
            print(f"[{broker}] intake: {intake}", flush=True)
            runs = {1: [], 2: []}
            for _attempt in range(args.repeat):
                for hosts in (1, 2):
                    print(f"[{broker}] burst of {args.jobs} on {hosts} host(s) ...", flush=True)
                    runs[hosts].append(measure_burst(services, broker, hosts, args.jobs, args.image, tmp,
                                                     args.host_cpus))
                    print(f"[{broker}] {runs[hosts][-1]}", flush=True)
            # Other load on the machine only ever slows a run down: the fastest run is the least disturbed.
            one, two = (max(runs[h], key=lambda r: r["jobs_per_s"]) for h in (1, 2))
            ratio = round(two["jobs_per_s"] / one["jobs_per_s"], 2)
            # The same ratio had each job's steps taken as long on two hosts as on one: what the
            # coordination allows, the CPU contention (ours and other people's) factored out.
            at_equal_steps = round(ratio * two["step_seconds_per_job"] / one["step_seconds_per_job"], 2)
            # Each two-host run against the one-host run just before it (closest in time, similar load).
            paired = [round(b["jobs_per_s"] / a["jobs_per_s"], 2) for a, b in zip(runs[1], runs[2])]
            results[broker] = {"intake": intake, "one_host": one, "two_hosts": two, "ratio": ratio,
                               "ratio_at_equal_step_times": at_equal_steps, "paired_ratios": paired,
                               "runs": runs}
            print(f"[{broker}] two hosts / one host = {ratio}x (goal >= 1.8); "
                  f"{at_equal_steps}x at equal step times; run by run {paired}", flush=True)
    finally:
        origin.stop()
        s3.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    budget = f"{args.host_cpus} cores per host" if args.host_cpus else "no CPU budget per host"
    print(f"\n{args.jobs} jobs of {args.image} per burst, {budget}, the fastest of {args.repeat} runs each")
    print("\n| broker | intake jobs/s | 1 host jobs/s | 2 hosts jobs/s | ratio | run by run "
          "| ratio at equal step times | step s/job 1 host, 2 hosts | worker CPU s/job 1 host, 2 hosts "
          "| loadavg 1 min (1 host, 2 hosts) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for broker in args.brokers.split(","):
        r = results[broker]
        one, two = r["one_host"], r["two_hosts"]
        print(f"| {broker} | {r['intake']['jobs_per_s']} | {one['jobs_per_s']} | {two['jobs_per_s']} | "
              f"{r['ratio']}x | {', '.join(f'{p}x' for p in r['paired_ratios'])} | "
              f"{r['ratio_at_equal_step_times']}x | {one['step_seconds_per_job']}, "
              f"{two['step_seconds_per_job']} | {one['worker_cpu_seconds_per_job']}, "
              f"{two['worker_cpu_seconds_per_job']} | {one['loadavg_after'].split()[0]}, "
              f"{two['loadavg_after'].split()[0]} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

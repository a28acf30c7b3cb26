"""`make bench`: every benchmark of issue #5 in one run; prints a table and
writes JSON (bench/results/latest.json by default).

    python -m bench.run                        # the full run
    python -m bench.run --parts variant --runs 3
    python -m bench.run --quick --no-sharp     # what tests/system/test_bench_smoke.py runs
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from . import inputs, report
from .cpu import system_total
from .system import loadavg

PARTS = ("variant", "quality", "history", "lanes", "pickup", "single", "throughput", "floor", "memory", "intake",
         "traffic", "wan")
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"

#: Keys the origin serves the bench inputs under.
SMALL_KEY, KEY_12MP, KEY_24MP, KEY_100MP = "small.jpg", "photo-12mp.jpg", "photo-24mp.jpg", "photo-100mp.jpg"


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    # 15: on this virtual machine the medians of 7-11 runs moved the 24 MP ours/sharp ratio by +-0.03
    # from run to run (BENCHMARKS.md, step 6); the median of 15 stays nearer the pooled figure.
    p.add_argument("--runs", type=int, default=15, help="fresh processes per implementation and image")
    p.add_argument("--pickup-jobs", type=int, default=200)
    p.add_argument("--single-jobs", type=int, default=5, help="12 MP jobs one at a time: INSERT to completed")
    p.add_argument("--throughput-jobs", type=int, default=500)
    p.add_argument("--bound-images", type=int, default=None, help="in-process bound images (default: as many as jobs)")
    p.add_argument("--floor-jobs", type=int, default=500,
                   help="jobs of the floor burst (the contract's work without images, bench/floor.py)")
    p.add_argument("--memory-burst", type=int, default=12, help="24 MP jobs in the memory burst")
    p.add_argument("--intake-jobs", type=int, default=2000)
    p.add_argument("--intake-rounds", type=int, default=3,
                   help="rounds of the intake part against its baseline, alternating which goes first")
    p.add_argument("--traffic-jobs", type=int, default=20, help="12 MP jobs counted on one host, then on two")
    p.add_argument("--wan-runs", type=int, default=5, help="12 MP jobs one at a time through the WAN proxy")
    p.add_argument("--baseline-ref", default=None,
                   help="git ref of a release to run the traffic, wan and intake parts against too (e.g. the previous "
                        "main)")
    p.add_argument("--processes", type=int, default=2, help="worker processes, as the Procfile default")
    p.add_argument("--threads", type=int, default=3, help="threads per worker process (CONCURRENCY default)")
    p.add_argument("--broker", choices=("postgres", "rabbitmq"), default="postgres",
                   help="broker of the system parts (pickup, single, throughput, memory, intake); "
                        "rabbitmq needs the machine's RabbitMQ at 127.0.0.1:5672")
    p.add_argument("--no-sharp", action="store_true", help="leave sharp out (no node/npm needed)")
    p.add_argument("--no-avif", action="store_true", help="the quality part without its AVIF run")
    p.add_argument("--history-jobs", type=int, default=2_000_000, help="finished jobs of the history part")
    p.add_argument("--history-files", type=int, default=500_000, help="files of the history part")
    p.add_argument("--history-runs", type=int, default=20, help="fresh lots timed through every hot path")
    p.add_argument("--history-upgrade-from", metavar="REF",
                   help="also time applying sql/ over REF's schema holding the history (e.g. main)")
    p.add_argument("--lanes-backlog", type=int, default=100_000, help="republish jobs of the lanes part's backlog")
    p.add_argument("--lanes-window", type=float, default=60.0,
                   help="seconds the lanes part measures the backlog alone, then with fresh lots")
    p.add_argument("--quick", action="store_true", help="tiny counts everywhere: checks the harness, not the machine")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    args.parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        p.error(f"unknown parts: {', '.join(sorted(unknown))}")
    if args.intake_rounds < 1:
        p.error("--intake-rounds must be at least 1")
    if args.quick:
        args.runs, args.pickup_jobs, args.single_jobs = 1, 3, 1
        args.throughput_jobs, args.memory_burst, args.intake_jobs, args.floor_jobs = 3, 2, 20, 3
        args.traffic_jobs, args.wan_runs, args.intake_rounds = 2, 1, 1
        args.history_jobs, args.history_files, args.history_runs = 2000, 500, 2
        args.lanes_backlog, args.lanes_window = 300, 3.0
    if args.bound_images is None:
        args.bound_images = args.throughput_jobs
    return args


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 platform.processor())
    import PIL
    import pyvips

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=inputs.ROOT).stdout.strip()
    except OSError:
        commit = ""
    return {"nproc": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "libvips": ".".join(str(pyvips.version(i)) for i in range(3)), "pillow": PIL.__version__,
            "git_commit": commit}


def main(argv=None) -> dict:
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.UTC)
    result = {"date": started.isoformat(timespec="seconds"),
              "command": " ".join(["python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)]),
              "machine": machine(), "loadavg_start": loadavg(), "settings": {
                  k: v for k, v in vars(args).items() if k not in ("out",)}}
    need_system = [p for p in args.parts if p not in ("variant", "quality", "history")]

    if "variant" in args.parts:
        from . import variant_cost

        impls = ["ours", "pillow"]
        if not args.no_sharp:
            if not variant_cost.sharp_available():
                raise SystemExit("sharp is not installed: run `make bench` (it runs npm) or pass --no-sharp")
            impls.insert(1, "sharp")
        images = {"12mp": inputs.photo(12), "24mp": inputs.photo(24)}
        print(f"variant cost: {args.runs} runs x {impls} x {list(images)} ...", flush=True)
        result["variant_cost"] = variant_cost.compare(images, args.runs, tuple(impls))

    if "quality" in args.parts:
        from .quality import quality_part

        print("quality: the corpus' photographs at q80, at auto's targets, at q80's p10, and in AVIF ...", flush=True)
        result["quality"] = quality_part(args.quick, avif=not args.no_avif)

    if "history" in args.parts:
        from devstack import postgres

        from .history import history_part

        print(f"history: {args.history_jobs:,} jobs loaded by SQL, every hot path planned and timed ...", flush=True)
        server = postgres.start(inputs.ROOT / ".run")
        try:
            result["history"] = history_part(server, args.history_jobs, args.history_files, args.history_runs)
            if args.history_upgrade_from:
                from .history import upgrade_seconds

                print(f"history: the upgrade from {args.history_upgrade_from} ...", flush=True)
                result["history"]["upgrade_from"] = args.history_upgrade_from
                result["history"]["upgrade_seconds"] = upgrade_seconds(
                    server, args.history_upgrade_from, args.history_jobs, args.history_files)
        finally:
            server.stop()

    if need_system:
        served = {SMALL_KEY: inputs.SMALL, KEY_12MP: inputs.photo(12)}
        if {"memory"} & set(args.parts):
            served[KEY_24MP] = inputs.photo(24)
            served[KEY_100MP] = inputs.photo(100)
        from .system import Services

        services = Services(served)
        try:
            run_system_parts(args, services, result)
        finally:
            services.close()

    result["loadavg_end"] = loadavg()
    result["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    result["targets"] = report.targets(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(report.table(result))
    print(f"\nwritten: {args.out}")
    return result


def run_system_parts(args, services, result) -> None:
    shape = dict(processes=args.processes, threads=args.threads, broker=args.broker)
    if {"pickup", "single", "throughput"} & set(args.parts):
        with services.system(**shape) as stack:
            if "pickup" in args.parts:
                from .pickup import pickup_latency

                print(f"pickup latency: {args.pickup_jobs} jobs one at a time ...", flush=True)
                result["pickup"] = pickup_latency(stack, SMALL_KEY, args.pickup_jobs)
            if "single" in args.parts:
                from .pickup import insert_to_completed

                print(f"12 MP INSERT to completed: {args.single_jobs} jobs one at a time ...", flush=True)
                result["single_12mp"] = insert_to_completed(stack, KEY_12MP, args.single_jobs)
            if "throughput" in args.parts:
                from .throughput import burst, in_process_bound

                print(f"throughput: burst of {args.throughput_jobs} 12 MP jobs ...", flush=True)
                system = burst(stack, services.s3.process.pid, KEY_12MP, args.throughput_jobs)
                print(f"throughput: in-process bound, {args.bound_images} images ...", flush=True)
                bound = in_process_bound(inputs.photo(12), args.bound_images, args.processes, args.threads)
                result["throughput"] = {
                    "system": system, "in_process_bound": bound, **shape,
                    "system_over_bound": system["jobs_per_min"] / bound["jobs_per_min"],
                    "overhead_pct": (1 - system["jobs_per_min"] / bound["jobs_per_min"]) * 100}
                # The same comparison in CPU seconds per job: what other users of a
                # shared machine took does not enter it.
                per_job = system["cpu_s_per_job"]
                result["throughput"]["cpu_bound_over_system"] = bound["cpu_s_per_image"] / system_total(per_job)
                result["throughput"]["cpu_bound_over_workers"] = bound["cpu_s_per_image"] / per_job["workers"]
    if "floor" in args.parts:
        from .floor import floor
        from .throughput import in_process_bound

        bound = result.get("throughput", {}).get("in_process_bound")
        if bound is None:  # the floor run alone: the image work's CPU from a shorter bound
            print(f"floor: in-process bound, {min(args.bound_images, 120)} images ...", flush=True)
            bound = in_process_bound(inputs.photo(12), min(args.bound_images, 120), args.processes, args.threads)
        print(f"floor: burst of {args.floor_jobs} 12 MP jobs, no image work ...", flush=True)
        result["floor"] = floor(services, shape, inputs.photo(12), KEY_12MP, args.floor_jobs, bound["cpu_s_per_image"])
    if "memory" in args.parts:
        from .memory import worker_memory

        with services.system(**shape) as stack:
            print(f"memory: one 100 MP job, then {args.memory_burst} 24 MP jobs ...", flush=True)
            result["memory"] = worker_memory(stack, KEY_100MP, KEY_24MP, args.memory_burst)
    if "traffic" in args.parts:
        from .traffic import traffic

        print(f"traffic: {args.traffic_jobs} 12 MP jobs on one host, then on two ...", flush=True)
        result["traffic"] = traffic(services, shape, KEY_12MP, inputs.photo(12).stat().st_size, args.traffic_jobs,
                                    two_hosts=not args.quick, baseline_ref=args.baseline_ref)
    if "wan" in args.parts:
        from .traffic import wan

        print(f"wan: {args.wan_runs} 12 MP jobs one at a time through a WAN-like link to the bucket ...", flush=True)
        result["wan"] = wan(services, shape, KEY_12MP, args.wan_runs, args.baseline_ref)
    if "lanes" in args.parts:
        from .lanes import FRESH_PER_S, lanes_part

        print(f"lanes: pickup on an empty database and on {args.history_jobs:,} jobs of history, then behind "
              f"a backlog of {args.lanes_backlog:,} ...", flush=True)
        result["lanes"] = lanes_part(services, shape, SMALL_KEY, args.history_jobs, args.history_files,
                                     args.lanes_backlog, args.lanes_window, FRESH_PER_S)
    if "intake" in args.parts:
        intake_part(result, services, shape, args)


def intake_part(result: dict, services, shape: dict, args) -> None:
    """The intake on this tree and, with a baseline, on it too, in --intake-rounds rounds that alternate
    which goes first (this, baseline; baseline, this; ...), so that a machine whose speed drifts during the
    run weighs on both alike. Every round is kept; `intake` and `intake_baseline` are the round whose
    ratio of jobs per second is the median."""
    from .intake import intake

    def this() -> dict:
        with services.system(workers_module="bench.noop_actors", **shape) as stack:
            print(f"intake: {args.intake_jobs} jobs, no-op steps ...", flush=True)
            return intake(stack, services.s3.process.pid, SMALL_KEY, args.intake_jobs)

    if not args.baseline_ref:
        result["intake"] = this()
        return
    from .traffic import checkout

    with checkout(args.baseline_ref) as tree:
        def baseline() -> dict:
            with services.system(workers_module="bench.noop_actors", root=tree, **shape) as stack:
                print(f"intake: {args.intake_jobs} jobs, no-op steps, on {args.baseline_ref} ...", flush=True)
                return {"ref": args.baseline_ref, **intake(stack, services.s3.process.pid, SMALL_KEY,
                                                           args.intake_jobs)}

        rounds = []
        for n in range(args.intake_rounds):
            if n % 2 == 0:
                now = this()
                rounds.append({"first": "this", "this": now, "baseline": baseline()})
            else:
                before = baseline()
                rounds.append({"first": "baseline", "this": this(), "baseline": before})
    # In the order they ran; the round shown is the middle one by ratio (the upper middle of an even count).
    median = sorted(rounds, key=lambda r: r["this"]["completed_per_s"] / r["baseline"]["completed_per_s"])[
        len(rounds) // 2]
    result["intake"], result["intake_baseline"] = median["this"], median["baseline"]
    if len(rounds) > 1:
        result["intake_rounds"] = rounds


if __name__ == "__main__":
    main()

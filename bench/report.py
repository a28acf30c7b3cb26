"""The issue's targets checked against one run's figures, and the printed table."""

from __future__ import annotations

import statistics

from .cpu import system_total

# Targets of issue #5.
TARGET_CPU_VS_SHARP = 0.6
TARGET_RSS_VS_PILLOW = 1 / 3
TARGET_PICKUP_P50_MS = 100
TARGET_PICKUP_P99_MS = 1000
TARGET_THROUGHPUT_VS_BOUND = 0.85
TARGET_100MP_GROWTH_MB = 150
# Targets of the data-path issue: what a job may cost on the wire, and the throughput it allows.
TARGET_S3_REQUESTS_PER_OBJECT = 2
TARGET_SENT_OVER_PUBLISHED = 1.1
TARGET_READ_OVER_PUBLISHED = 0.1
TARGET_RAID_OVER_SOURCE = 1.1
TARGET_THROUGHPUT_VS_BOUND_DATA_PATH = 0.72
# Targets of issue 26 (a year in production).
TARGET_CONSOLE_P95_MS = 200
TARGET_ADMIN_SECONDS = 1.0
TARGET_PURGE_BATCH_SECONDS = 1.0
TARGET_PURGE_DAY_SECONDS = 60
TARGET_HISTORY_PICKUP_P50_MS = 15
TARGET_HISTORY_PICKUP_P99_MS = 50
TARGET_HISTORY_OVER_EMPTY = 1.2
TARGET_BACKLOG_OVER_IDLE = 2.0
TARGET_BACKLOG_SHARE = 0.9
TARGET_INTAKE_RATE_VS_BASELINE = 2.0
TARGET_INTAKE_PG_CPU_VS_BASELINE = 0.5


def targets(result: dict) -> list[dict]:
    out = []

    def add(name, measured, limit, at_most=True, unit=""):
        met = measured <= limit if at_most else measured >= limit
        out.append({"target": name, "measured": round(measured, 3), "limit": round(limit, 3),
                    "rule": "<=" if at_most else ">=", "unit": unit, "met": met})

    for label, r in result.get("variant_cost", {}).items():
        ratios = r["ours_over"]
        if "sharp" in ratios:
            add(f"variant CPU ours/sharp ({label})", ratios["sharp"]["work_cpu_s"], TARGET_CPU_VS_SHARP)
        if "pillow" in ratios:
            add(f"peak RSS ours/Pillow ({label})", ratios["pillow"]["peak_rss_mb"], TARGET_RSS_VS_PILLOW)
    if "pickup" in result:
        add("pickup p50", result["pickup"]["p50_ms"], TARGET_PICKUP_P50_MS, unit="ms")
        add("pickup p99", result["pickup"]["p99_ms"], TARGET_PICKUP_P99_MS, unit="ms")
    if "throughput" in result:
        add("throughput system/bound", result["throughput"]["system_over_bound"], TARGET_THROUGHPUT_VS_BOUND,
            at_most=False)
        add("throughput system/bound (data path)", result["throughput"]["system_over_bound"],
            TARGET_THROUGHPUT_VS_BOUND_DATA_PATH, at_most=False)
    for hosts, t in result.get("traffic", {}).items():
        if "skipped" in t or hosts.startswith("baseline"):
            continue
        add(f"S3 requests per object ({hosts})", t["requests_per_published_object"], TARGET_S3_REQUESTS_PER_OBJECT)
        add(f"bytes to bucket/published ({hosts})", t["sent_over_published"], TARGET_SENT_OVER_PUBLISHED)
        add(f"bytes from bucket/published ({hosts})", t["read_over_published"], TARGET_READ_OVER_PUBLISHED)
        add(f"RAID bytes/source ({hosts})", t["raid_over_source"], TARGET_RAID_OVER_SOURCE)
        add(f"bucket keys outside media/ ({hosts})", t["bucket_keys_outside_media"], 0)
    if "quality" in result:
        from .quality import targets as quality_targets

        for name, measured, limit, at_most in quality_targets(result["quality"]):
            add(name, measured, limit, at_most)
    if "history" in result:
        h = result["history"]
        add("hot paths with a sequential scan of a big table", len(h["sequential_scans"]), 0)
        for route, t in h.get("console_ms", {}).items():
            add(f"console {route} p95", t["p95"], TARGET_CONSOLE_P95_MS, unit="ms")
        for command, t in h.get("admin_seconds", {}).items():
            add(f"publisher-admin {command}", t["max"], TARGET_ADMIN_SECONDS, unit="s")
        purged = h.get("purge_day", {}).values()
        if purged:
            add("purge: the longest batch (row locks held)", max(p["longest_batch_seconds"] for p in purged),
                TARGET_PURGE_BATCH_SECONDS, unit="s")
            add("purge: one day of history", sum(p["seconds"] for p in purged), TARGET_PURGE_DAY_SECONDS, unit="s")
    if "lanes" in result:
        lanes = result["lanes"]
        add("pickup p50 on the history", lanes["pickup_history"]["p50_ms"], TARGET_HISTORY_PICKUP_P50_MS, unit="ms")
        add("pickup p99 on the history", lanes["pickup_history"]["p99_ms"], TARGET_HISTORY_PICKUP_P99_MS, unit="ms")
        add("pickup p50 history/empty", lanes["history_over_empty_p50"], TARGET_HISTORY_OVER_EMPTY)
        add("pickup p99 history/empty", lanes["history_over_empty_p99"], TARGET_HISTORY_OVER_EMPTY)
        add("pickup p99 behind a backlog/idle", lanes["backlog_over_idle_p99"], TARGET_BACKLOG_OVER_IDLE)
        add("fresh lots claimed behind a backlog job", lanes["fresh_behind_a_backlog_job"], 0)
        if lanes["backlog_share_of_left_over"] is not None:
            add("backlog share of the capacity left over", lanes["backlog_share_of_left_over"],
                TARGET_BACKLOG_SHARE, at_most=False)
    if "intake" in result and "intake_baseline" in result:
        rounds = result.get("intake_rounds") or [{"this": result["intake"], "baseline": result["intake_baseline"]}]
        add("no-op jobs completed per s, this/baseline",
            statistics.median(r["this"]["completed_per_s"] / r["baseline"]["completed_per_s"] for r in rounds),
            TARGET_INTAKE_RATE_VS_BASELINE, at_most=False)
        add("PostgreSQL CPU per no-op job, this/baseline",
            statistics.median(_postgres_ms(r["this"]) / _postgres_ms(r["baseline"]) for r in rounds),
            TARGET_INTAKE_PG_CPU_VS_BASELINE)
    if "memory" in result:
        add("100 MP worker RSS growth", result["memory"]["single"]["max_growth_mb"], TARGET_100MP_GROWTH_MB,
            unit="MB")
    return out


def _postgres_ms(intake: dict) -> float:
    return next(ms for name, ms in intake["cpu_ms_per_job"].items() if name.startswith("postgres"))


def table(result: dict) -> str:
    lines = [f"media-publisher benchmarks  {result['date']}  {result['machine']['nproc']} x "
             f"{result['machine']['cpu_model']}  libvips {result['machine']['libvips']}  "
             f"commit {result['machine']['git_commit']}",
             f"command: {result['command']}", f"loadavg start {result['loadavg_start']}, end {result['loadavg_end']}",
             ""]
    # Runs before the --broker option were all on PostgreSQL.
    broker = result.get("settings", {}).get("broker", "postgres")
    for label, r in result.get("variant_cost", {}).items():
        lines.append(f"variant cost, {label} ({r['runs']} runs, medians; loadavg {r['loadavg']})")
        lines.append(f"  {'':8} {'work CPU s':>10} {'proc CPU s':>10} {'peak RSS MB':>11} {'RSS growth MB':>13}")
        for impl, f in r["by_implementation"].items():
            lines.append(f"  {impl:8} {f['work_cpu_s']:10.3f} {f['process_cpu_s']:10.3f} {f['peak_rss_mb']:11.1f} "
                         f"{f['rss_growth_mb']:13.1f}")
        for other, q in r["ours_over"].items():
            lines.append(f"  ours/{other:<6}{q['work_cpu_s']:9.2f}x {q['process_cpu_s']:9.2f}x "
                         f"{q['peak_rss_mb']:10.2f}x {q['rss_growth_mb']:12.2f}x")
        lines.append("")
    if "quality" in result:
        lines += quality_lines(result["quality"])
    if "history" in result:
        from .history import lines as history_lines

        lines += history_lines(result["history"])
    if "lanes" in result:
        from .lanes import lines as lanes_lines

        lines += lanes_lines(result["lanes"])
    if "pickup" in result:
        p = result["pickup"]
        lines.append(f"pickup latency, INSERT -> fetch started ({p['n']} jobs one at a time, {p['image']}; "
                     f"loadavg {p['loadavg']})")
        lines.append(f"  p50 {p['p50_ms']:.1f} ms  p90 {p['p90_ms']:.1f} ms  p99 {p['p99_ms']:.1f} ms  "
                     f"max {p['max_ms']:.1f} ms; INSERT -> completed p50 {p['insert_to_completed']['p50_ms']:.0f} ms")
        lines.append("")
    if "single_12mp" in result:
        s = result["single_12mp"]
        lines.append(f"one 12 MP photo on an idle system, INSERT -> completed: median {s['median_s']:.2f} s "
                     f"of {s['n']} ({', '.join(f'{x:.2f}' for x in s['runs_s'])}); loadavg {s['loadavg']}")
        lines.append("")
    if "throughput" in result:
        t = result["throughput"]
        s, b = t["system"], t["in_process_bound"]
        lines.append(f"throughput, 12 MP, {t['processes']} processes x {t['threads']} threads, {broker} broker")
        lines.append(f"  whole system  {s['jobs']:5d} jobs in {s['seconds']:7.1f} s = {s['jobs_per_min']:6.1f} jobs/min"
                     f"  (loadavg {s['loadavg_before']} -> {s['loadavg_after']})")
        lines.append(f"  variant only  {b['images']:5d} imgs in {b['seconds']:7.1f} s = {b['jobs_per_min']:6.1f} /min"
                     f"  (loadavg {b['loadavg_before']} -> {b['loadavg_after']})")
        lines.append(f"  system/bound {t['system_over_bound']:.2f} (overhead {t['overhead_pct']:.1f} %)")
        lines.append(f"  CPU s per job: variant step alone {b['cpu_s_per_image']:.3f}; whole system by component:")
        for name, value in s["cpu_s_per_job"].items():
            lines.append(f"    {value:7.3f}  {name}")
        lines.append(f"  (other users of the machine took {b['other_users_cpu_s_per_image']:.3f} CPU s per image "
                     "during the variant-only run)")
        lines.append(f"  in CPU terms: bound/system {t['cpu_bound_over_system']:.2f}, "
                     f"bound/workers alone {t['cpu_bound_over_workers']:.2f}")
        lines.append("")
    if "floor" in result:
        lines += floor_lines(result["floor"], result.get("throughput"), broker)
    if "memory" in result:
        m = result["memory"]
        lines.append(f"worker memory (VmHWM of each worker process; baseline VmRSS {m['baseline_rss_mb']:.0f} MB)")
        for phase in ("single", "burst"):
            x = m[phase]
            lines.append(f"  {x['jobs']:3d} x {x['image']:16} peak {x['peak_rss_mb']:6.0f} MB, growth "
                         f"{x['max_growth_mb']:6.0f} MB (loadavg {x['loadavg']})")
        lines.append("")
    for hosts, t in result.get("traffic", {}).items():
        if "skipped" in t:
            lines += [f"traffic, {hosts}: {t['skipped']}", ""]
            continue
        lines.append(f"traffic per job, {t['jobs']} 12 MP jobs, {hosts.replace('_', ' ')} "
                     f"(published {t['published_bytes_per_job'] / 1000:.0f} kB per job)")
        lines.append("  S3 requests: " + ", ".join(f"{m} {c:.2f}" for m, c in t["requests_per_job"].items())
                     + f"  ({t['requests_per_published_object']:.2f} per published object)")
        lines.append(f"  to the bucket {t['sent_over_published']:.2f}x, "
                     f"from the bucket {t['read_over_published']:.2f}x the published bytes; "
                     f"from RAID {t['raid_over_source']:.2f}x the source bytes")
        lines.append("")
    if "wan" in result:
        w = result["wan"]
        lines.append(f"WAN to the bucket (+{w['delay_s'] * 1000:.0f} ms per request, "
                     f"{w['bandwidth_bps'] / 1e6:.0f} Mbit/s): one 12 MP photo, INSERT -> completed, median of "
                     f"{w['runs']}")
        for name in ("this", "baseline"):
            if name in w:
                x = w[name]
                lines.append(f"  {name:8} ({x['ref']}): {x['median_s']:.2f} s, {x['s3_requests_per_job']:.0f} S3 "
                             f"requests per job (runs {', '.join(f'{v:.2f}' for v in x['runs_s'])})")
        lines.append("")
    rounds = result.get("intake_rounds", [])
    for n, r in enumerate(rounds, 1):
        lines.append(f"intake round {n} of {len(rounds)}: completed {r['this']['completed_per_s']:.0f} "
                     f"vs {r['baseline']['completed_per_s']:.0f} jobs/s, PostgreSQL CPU {_postgres_ms(r['this']):.2f} "
                     f"vs {_postgres_ms(r['baseline']):.2f} ms per job")
    if "intake_rounds" in result:
        lines.append("(the round below is the one whose ratio of jobs per second is the median; the targets take "
                     "the median of each ratio over the rounds)")
        lines.append("")
    for key in ("intake", "intake_baseline"):
        if key not in result:
            continue
        i = result[key]
        on = f", on {i['ref']}" if "ref" in i else ""
        lines.append(f"intake{on}, no-op steps, {broker} broker, {i['jobs']} jobs inserted one per transaction "
                     f"(loadavg {i['loadavg_before']} -> {i['loadavg_after']})")
        lines.append(f"  inserted {i['insert_per_s']:.0f}/s, claimed+enqueued {i['claimed_enqueued_per_s']:.0f}/s, "
                     f"started {i['started_per_s']:.0f}/s, completed {i['completed_per_s']:.0f}/s")
        lines.append("  CPU ms per job: " + ", ".join(f"{name} {ms:.1f}" for name, ms in i["cpu_ms_per_job"].items()))
        if "publish_jobs" in i:
            t = i["publish_jobs"]
            lines.append(f"  publish_jobs (fillfactor {t['fillfactor']}, no vacuum meanwhile): "
                         f"{t['updates_per_job']:.1f} updates per job, {t['hot_share'] * 100:.0f}% HOT; "
                         f"{t['dead_tuples_after']} dead row versions after the burst "
                         f"({t['dead_per_job']:.1f} per job) beside {t['live_tuples']} live")
        lines.append("")
    if result.get("targets"):
        lines.append("targets (of the issues that set them)")
        for t in result["targets"]:
            lines.append(f"  {'MET ' if t['met'] else 'MISS'}  {t['target']:32} {t['measured']:>9} {t['unit']:2} "
                         f"{t['rule']} {t['limit']}")
        if "floor" in result:
            lines.append(f"  (the most system/bound can reach on this machine: "
                         f"{result['floor']['ceiling_system_over_bound']:.2f}, see floor above)")
    return "\n".join(lines)


def floor_lines(f: dict, throughput: dict | None, broker: str) -> list[str]:
    lines = [f"floor: the contract's work without images (bench/floor_actors.py), 12 MP, {broker} broker",
             f"  {f['jobs']:5d} jobs in {f['seconds']:7.1f} s = {f['jobs_per_min']:6.1f} jobs/min"
             f"  (loadavg {f['loadavg_before']} -> {f['loadavg_after']})",
             "  CPU s per job by component:"]
    lines += [f"    {value:7.3f}  {name}" for name, value in f["cpu_s_per_job"].items()]
    lines.append(f"  floor {f['floor_cpu_s_per_job']:.3f} CPU s per job (other users left out) against the image "
                 f"work's {f['image_cpu_s_per_job']:.3f}: system/bound can reach at most "
                 f"{f['ceiling_system_over_bound']:.2f} here")
    if throughput:
        ours = system_total(throughput["system"]["cpu_s_per_job"])
        beyond = ours - f["image_cpu_s_per_job"] - f["floor_cpu_s_per_job"]
        lines.append(f"  the system above spent {ours:.3f} CPU s per job: image work + floor + {beyond:.3f} of its own "
                     "(probes, checks, clean-up)")
    lines.append("")
    return lines


def quality_lines(q: dict) -> list[str]:
    lines = [f"quality, {q['photographs']} photographs (q80's p10 as targets: {q['matched_targets']})",
             f"  {'run':8} {'variant':13} {'within 3':>8} {'p10':>6} {'median':>6} {'q med':>5} {'bytes':>10}"]
    for run, summary in q["runs"].items():
        for key, v in summary.items():
            if isinstance(v, dict) and "n" in v:
                within = "" if v["within_3"] is None else f"{v['within_3'] * 100:.0f}%"
                lines.append(f"  {run:8} {key:13} {within:>8} {v['score_p10']:6.1f} {v['score_median']:6.1f} "
                             f"{v['quality_median']:5.0f} {v['bytes']:10d}")
        lines.append(f"  {run:8} render CPU {summary['cpu_s']:.2f} s, encodes "
                     + ", ".join(f"{fmt} {s:.2f} s" for fmt, s in summary["encode_cpu_s"].items()))
    return lines + [""]

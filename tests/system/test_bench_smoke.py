"""The benchmark harness (bench/, `make bench`) with tiny counts: every part
runs against the real system and the JSON it writes is well formed. Figures
are not checked here (no timing assertions); BENCHMARKS.md holds them."""

import json
import math
import subprocess
import sys

import pytest

from bench import stats
from devstack.procs import ROOT

PARTS = ("variant_cost", "quality", "history", "lanes", "pickup", "single_12mp", "throughput", "floor", "memory",
         "intake")


def numbers(tree):
    if isinstance(tree, bool):
        return
    if isinstance(tree, (int, float)):
        yield tree
    elif isinstance(tree, dict):
        for value in tree.values():
            yield from numbers(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from numbers(value)


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_quick_run_writes_well_formed_results(tmp_path):
    out = tmp_path / "results.json"
    run = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--no-sharp", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=590)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "targets (of the issues that set them)" in run.stdout  # the table was printed
    result = json.loads(out.read_text())

    assert set(PARTS) <= set(result)
    assert all(math.isfinite(x) for x in numbers(result))  # (overhead_pct may be negative with 3 jobs)
    for label in ("12mp", "24mp"):
        by_impl = result["variant_cost"][label]["by_implementation"]
        assert set(by_impl) == {"ours", "pillow"}  # sharp left out: no npm in CI
        for impl, figures in by_impl.items():
            assert figures["work_cpu_s"] > 0 and figures["peak_rss_mb"] > 0, impl
            # both produced the default variants of a 4:3 photo
            assert sorted(tuple(o[1:3]) for o in figures["outputs"]) == [(400, 300), (1600, 1200)], impl
        assert result["variant_cost"][label]["ours_over"]["pillow"]["work_cpu_s"] > 0
    assert result["pickup"]["n"] == 3 and result["pickup"]["p50_ms"] <= result["pickup"]["p99_ms"]
    assert result["single_12mp"]["n"] == 1
    assert result["throughput"]["system"]["jobs"] == 3 and result["throughput"]["in_process_bound"]["images"] == 3
    floor = result["floor"]
    assert floor["jobs"] == 3 and set(floor["variant_bytes"]) == {"thumb", "display"}
    # the floor's image work is the bound's, and its ceiling is computed from the two
    assert floor["image_cpu_s_per_job"] == result["throughput"]["in_process_bound"]["cpu_s_per_image"]
    assert 0 < floor["ceiling_system_over_bound"] < 1
    assert "the most system/bound can reach on this machine" in run.stdout
    assert result["memory"]["single"]["image"] == "photo-100mp.jpg"
    assert len(result["memory"]["single"]["per_process"]) == 2  # both worker processes were read
    assert result["intake"]["jobs"] == 20
    # the quality part: the same photographs at q80, at auto's targets, at q80's p10 and in AVIF
    quality = result["quality"]
    assert quality["photographs"] == 3 and set(quality["runs"]) == {"q80", "auto", "matched", "avif"}
    assert set(quality["matched_targets"]) == {"thumb", "display"}
    for run, images in quality["images"].items():
        formats = {"webp", "avif"} if run == "avif" else {"webp"}
        for image in images:
            assert {(v["name"], v["format"]) for v in image["variants"]} == {
                (name, fmt) for name in ("thumb", "display") for fmt in formats}, (run, image["file"])
            for v in image["variants"]:
                assert 0 < v["score"] <= 100 and v["bytes"] > 0
                if run == "q80":
                    assert (v["quality"], v["target"]) == (80 if v["format"] == "webp" else 50, None)
                else:  # the score recorded is the one the published bytes have
                    assert abs(v["recorded_score"] - v["score"]) < 0.01, (run, image["file"], v)
    assert "display webp: bytes auto/q80" in {t["target"] for t in result["targets"]}
    # the history part: a small history, every hot path planned and timed
    assert (result["history"]["jobs"], result["history"]["runs"]) == (2000, 2)
    assert isinstance(result["history"]["sequential_scans"], dict)  # (a table of 2,000 rows is rightly scanned)
    assert set(result["history"]["ms"]) >= {"claim", "finalize", "status", "jobs: failed"}
    assert set(result["history"]["console_ms"]) >= {"/", "/api/summary", "/jobs?status=failed", "/jobs/<id>"}
    assert set(result["history"]["admin_seconds"]) >= {"status", "list --json"}
    assert result["history"]["purge_day"]["completed_jobs"]["deleted"] > 0
    # the lanes part: pickup on empty and history databases, then behind a backlog
    lanes = result["lanes"]
    assert lanes["pickup_empty"]["n"] == lanes["pickup_history"]["n"] == 40
    assert lanes["backlog_jobs"] == 300 and lanes["pickup_under_backlog"]["n"] == 3
    assert lanes["capacity_per_s"] > 0
    assert {t["target"] for t in result["targets"]} >= {"pickup p50", "pickup p99", "throughput system/bound",
                                                          "100 MP worker RSS growth"}
    assert all(isinstance(t["met"], bool) for t in result["targets"])


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_quick_run_of_the_system_parts_on_rabbitmq(tmp_path):
    from tests.support.prerequisites import need_rabbitmq

    need_rabbitmq()
    out = tmp_path / "results.json"
    run = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--no-sharp",
                          "--parts", "throughput,floor,intake", "--broker", "rabbitmq", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=590)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "rabbitmq broker" in run.stdout
    result = json.loads(out.read_text())
    assert result["settings"]["broker"] == "rabbitmq" and result["throughput"]["broker"] == "rabbitmq"
    assert result["throughput"]["system"]["jobs"] == 3 and result["intake"]["jobs"] == 20
    # the broker's own CPU is accounted for, not lumped with other users of the machine
    assert "rabbitmq (the node)" in result["throughput"]["system"]["cpu_s_per_job"]
    assert "rabbitmq (the node)" in result["intake"]["cpu_ms_per_job"]
    assert "rabbitmq (the node)" in result["floor"]["cpu_s_per_job"] and result["floor"]["jobs"] == 3


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_scale_out_quick_run_writes_well_formed_results(tmp_path):
    # `make bench-scale` with tiny counts: hosts in network namespaces with CPU budgets.
    from tests.support.prerequisites import need_network_namespaces

    need_network_namespaces()
    out = tmp_path / "scale.json"
    run = subprocess.run([sys.executable, "-m", "bench.scale_out", "--jobs", "2", "--intake", "10", "--repeat", "1",
                          "--brokers", "postgres", "--host-cpus", "0.5", "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=590)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "| postgres |" in run.stdout  # the table was printed
    result = json.loads(out.read_text())
    assert all(math.isfinite(x) for x in numbers(result))
    assert result["host_cpus"] == 0.5 and result["postgres"]["intake"]["jobs"] == 10
    one, two = result["postgres"]["one_host"], result["postgres"]["two_hosts"]
    assert (one["hosts"], one["jobs"], one["failed"]) == (1, 2, 0)
    assert (two["hosts"], two["jobs"], two["failed"]) == (2, 2, 0)
    assert sum(two["variants_per_host"].values()) == 2


def test_percentile_is_nearest_rank():
    values = list(range(1, 201))  # 1..200
    assert stats.percentile(values, 50) == 100
    assert stats.percentile(values, 99) == 198
    assert stats.percentile(values, 100) == 200
    assert stats.percentile([7], 99) == 7


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_s3_costs_prices_every_request_a_job_makes():
    run = subprocess.run([sys.executable, "-m", "bench.s3_costs", "2"], cwd=ROOT, capture_output=True, text=True,
                         timeout=280)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = [line.split()[-6:] for line in run.stdout.splitlines() if " client " in line]
    assert len(rows) == 7, run.stdout
    for row in rows:  # each request ran and was priced
        assert row[0::2] == ["server", "client", "wall"], row
        assert all(float(x) >= 0 for x in row[1::2]), row

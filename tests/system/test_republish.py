"""`python -m publisher.ops.republish` after a deploy that changed the recipe: every
file is re-published with the new recipe, a few at a time, and none of them
goes offline meanwhile."""

import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = ["exif-orientation-1.jpg", "png-alpha.png", "animated.gif"]


def run_republish(stack, *args, env=None):
    return subprocess.run([sys.executable, "-m", "publisher.ops.republish", *args], env={**stack.env, **(env or {})},
                          cwd=ROOT, capture_output=True, text=True, timeout=240)


def files(stack):
    return {r["raid_key"]: r for r in stack.sql(
        "SELECT id, raid_key, publish_status, recipe, variants FROM auction_files ORDER BY raid_key")}


def test_republish_moves_every_file_to_the_new_recipe_without_downtime(make_stack):
    stack = make_stack()
    stack.start_workers()
    stack.start_listener()
    for name in FILES:
        assert stack.wait_for(stack.publish(name))["status"] == "completed"
    before = files(stack)
    old_recipe = {r["recipe"] for r in before.values()}
    assert len(old_recipe) == 1 and None not in old_recipe

    # nothing to do while the configuration is unchanged
    unchanged = run_republish(stack, "--rate", "5")
    assert unchanged.returncode == 0, unchanged.stderr + unchanged.stdout
    assert "0 jobs created" in unchanged.stdout
    assert stack.sql("SELECT count(*) AS n FROM publish_jobs")[0]["n"] == len(FILES)

    # deploy: the workers now publish display variants of 1200 px
    stack.workers.stop()
    stack.env.update(VARIANTS="thumb:400,display:1200")
    stack.start_workers()
    dry = run_republish(stack, "--dry-run")
    assert f"{len(FILES)} published files have another recipe" in dry.stdout

    # while it runs: every file stays published with working variants, and at most one job runs
    seen_active, seen_status, stop = set(), set(), threading.Event()

    def watch():
        while not stop.is_set():
            seen_active.add(stack.sql("SELECT count(*) AS n FROM publish_jobs WHERE republish_recipe IS NOT NULL "
                                      "AND status IN ('pending', 'queued', 'processing')")[0]["n"])
            seen_status.update(r["publish_status"] for r in files(stack).values())
            stop.wait(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = run_republish(stack, "--rate", "5", "--max-active", "1")
    finally:
        stop.set()
        watcher.join()
    assert result.returncode == 0, result.stderr + result.stdout
    assert f"({len(FILES)} jobs created)" in result.stdout
    assert seen_status == {"published"}
    assert max(seen_active) == 1

    after = files(stack)
    new_recipe = {r["recipe"] for r in after.values()}
    assert len(new_recipe) == 1 and new_recipe != old_recipe
    for name in FILES:
        old, new = before[name]["variants"], after[name]["variants"]
        if name == "animated.gif":  # 80 px, under both sizes: the same bytes, so the same key
            assert new["display"]["key"] == old["display"]["key"]
        else:
            assert new["display"]["key"] != old["display"]["key"]
        if name == "exif-orientation-1.jpg":
            assert (new["display"]["width"], new["display"]["height"]) == (1200, 800)
        # the old objects are still served: pages cached with old URLs keep working
        assert stack.object(old["display"]["key"])[0]
        assert stack.object(new["display"]["key"])[0]
    jobs = stack.sql("SELECT republish_recipe, status FROM publish_jobs WHERE republish_recipe IS NOT NULL")
    assert len(jobs) == len(FILES) and {j["status"] for j in jobs} == {"completed"}
    assert {j["republish_recipe"] for j in jobs} == new_recipe

    # run in another configuration than the workers': it says so, and stops
    other = run_republish(stack, "--rate", "5", env={"VARIANTS": "thumb:400,display:1000"})
    assert other.returncode == 1
    assert "run this command with the workers' configuration" in other.stdout
    assert stack.sql("SELECT count(*) AS n FROM publish_jobs WHERE status <> 'completed'")[0]["n"] == 0

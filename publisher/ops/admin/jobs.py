"""`publisher-admin list`, `show`, `retry`, `cancel`, `retry-failed` and `lane`: one job, the failed
ones, or a lane's."""

from __future__ import annotations

import sys

from publisher.jobs.store import actions
from publisher.jobs.store import overview as job_reads
from publisher.jobs.store.filters import JobFilter
from publisher.jobs.store.states import Lane
from publisher.ops.admin.confirm import confirm
from publisher.ops.admin.exit_codes import DONE, NOTHING_MATCHED
from publisher.ops.output import print_json


def list_jobs(cur, args) -> int:
    rows = job_reads.list_jobs(cur, JobFilter(status=args.status, reason=args.reason, since=args.since),
                               limit=args.limit, offset=args.offset)
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            error = f"  {r['last_error']}" if r["last_error"] and r["status"] != "completed" else ""
            print(f"{r['id']:>8}  {r['status']:<10} {r['stage']:<7} {r['updated_at']:%Y-%m-%d %H:%M:%S%z}  "
                  f"{r['raid_key']}{error}")
        print(f"{len(rows)} job(s)")
    return DONE if rows else NOTHING_MATCHED


def show(cur, args) -> int:
    job = job_reads.show_job(cur, args.job_id)
    if job is None:
        print(f"no job {args.job_id}", file=sys.stderr)
        return NOTHING_MATCHED
    if args.json:
        print_json(job)
        return DONE
    print(f"job {job['id']}: {job['status']} (stage {job['stage']}, retries {job['retry_count']}/"
          f"{job['max_retries']})")
    print(f"file {job['file_id']}: {job['raid_key']}, {job['publish_status']}"
          + (f", deleted {job['deleted_at']:%Y-%m-%d %H:%M:%S%z}" if job["deleted_at"] else ""))
    if job["last_error"]:
        print(f"last error ({job['failure_reason'] or 'untyped'}): {job['last_error']}")
    for name, v in sorted((job["variants"] or {}).items()):
        print(f"variant {name}: {v['width']}x{v['height']}, {v['bytes']} bytes, {v['url']}")
    print("timeline:")
    for e in job["timeline"]:
        change = f"{e['from_status']} -> {e['to_status']}" if e["from_status"] else f"created {e['to_status']}"
        detail = f"  ({e['last_error']})" if e["last_error"] and e["to_status"] in ("failed", "pending") else ""
        print(f"  {e['at']:%Y-%m-%d %H:%M:%S.%f%z}  {change}  stage {e['stage']}, retries {e['retry_count']}{detail}")
    return DONE


def report(rows, args) -> int:
    """What an operator action changed, one line per row; exit 1 when nothing did."""
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print(("changed: " if row["changed"] else "unchanged: ") + row["message"])
    return DONE if any(r["changed"] for r in rows) else NOTHING_MATCHED


def retry(cur, args) -> int:
    return report(actions.retry_job(cur, args.job_id), args)


def cancel(cur, args) -> int:
    return report(actions.cancel_job(cur, args.job_id), args)


def lane(cur, args) -> int:
    action = actions.pause_lane if args.action == "pause" else actions.resume_lane
    return report(action(cur, Lane[args.lane.upper()].value), args)


def retry_failed(cur, args) -> int:
    which = f" matching {args.reason!r}" if args.reason else ""
    candidates = actions.failures_to_retry(cur, args.reason)
    if args.dry_run or not candidates:
        if args.json:
            print_json({"dry_run": args.dry_run, "would_retry": candidates})
        else:
            for row in candidates:
                print(f"would retry: job {row['job_id']} (file {row['file_id']}): {row['last_error']}")
            print(f"{len(candidates)} failed job(s){which} would be set to pending")
        return DONE if candidates else NOTHING_MATCHED
    if not args.json:
        print(f"{len(candidates)} failed job(s){which} to run again")
    if not confirm(args, f"set {len(candidates)} failed job(s){which} to pending"):
        print("nothing changed")
        return NOTHING_MATCHED
    rows = actions.retry_failures(cur, args.reason)
    if args.json:
        print_json({"retried": rows})
    else:
        for row in rows:
            print(f"changed: job {row['job_id']} (file {row['file_id']}): failed -> pending "
                  f"(was: {row['last_error']})")
        print(f"{len(rows)} failed job(s){which} set to pending")
    return DONE if rows else NOTHING_MATCHED

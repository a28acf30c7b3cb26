"""`publisher-admin` (or `python -m publisher.ops.admin`): see and fix the job queue.

Needs only DATABASE_URL (except `maintain`). The actions are SQL functions
(sql/006_operations.sql) that take the same row locks as the workers; the
reads are publisher/ops/jobs.py, shared with the web page. Every command
takes --json; bulk commands (retry-failed, backfill, maintain) say what they
would do, take --dry-run, and ask before acting (--yes to skip).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import uuid
from contextlib import closing
from datetime import datetime, timedelta, timezone

import psycopg2
import psycopg2.errors
import psycopg2.extras

from publisher.jobs import queries
from publisher.ops import actions
from publisher.ops import backfill as backfill_ops
from publisher.ops import jobs as job_reads
from publisher.ops import output, schema
from publisher.clients.db import connect

#: Exit codes, the same for every command (also in --help).
DONE, NOTHING_MATCHED, USAGE, DATABASE_UNREACHABLE, PART_FAILED = 0, 1, 2, 3, 4

EXIT_CODES = """exit codes:
  0  done (or, with --dry-run, something would be done)
  1  nothing matched: no job or file to act on, nothing changed (schema: files pending)
  2  usage or configuration error: bad arguments, DATABASE_URL unset, no confirmation,
     or the database refused (permission denied for this role)
  3  the database is unreachable
  4  maintain: a part of the round failed (the bucket, the database, a permission); the others ran"""


class Refused(Exception):
    """The command will not go on: exit 2 with this message."""


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("publisher-admin: DATABASE_URL is not set", file=sys.stderr)
        return USAGE
    connected = False
    try:
        if args.command == "maintain":
            return _maintain(args)
        with closing(connect(url, "media-publisher-admin", connect_timeout=10)) as conn:
            connected = True
            if args.command == "migrate":
                return _migrate(url)  # psql applies the files; the connection proved the server is there
            if args.command == "backfill":
                return backfill(conn, args)
            with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                return COMMANDS[args.command](cur, args)
    except Refused as e:
        print(f"publisher-admin: {e}", file=sys.stderr)
        return USAGE
    except psycopg2.OperationalError as e:
        what = "lost the database" if connected else "cannot connect to the database"
        print(f"publisher-admin: {what}: {str(e).strip()}", file=sys.stderr)
        return DATABASE_UNREACHABLE
    except psycopg2.Error as e:
        print(f"publisher-admin: the database refused: {str(e).strip()}", file=sys.stderr)
        return USAGE


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="publisher-admin", description="See and fix media-publisher jobs.",
                                epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--json", action="store_true", help="print JSON (timestamps in ISO 8601) instead of text")
    bulk = argparse.ArgumentParser(add_help=False)
    bulk.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    bulk.add_argument("--yes", "-y", action="store_true",
                      help="do not ask for confirmation (needed when not on a terminal)")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name, help, parents=(out,)):
        return sub.add_parser(name, help=help, description=help, parents=list(parents), epilog=EXIT_CODES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    s = command("status", "queue depth, rates over the last hour, oldest pending job, last failures")
    s.add_argument("--failures", type=_count, default=10, help="how many recent failures to list (default 10)")
    s = command("list", "jobs, newest first, filtered by status, reason and time")
    s.add_argument("--status", choices=queries.JOB_STATUSES)
    s.add_argument("--reason", help="a literal part of last_error (case-insensitive), or a typed reason")
    s.add_argument("--since", type=_since, help="changed since: an ISO 8601 time, or an age such as 30m, 2h, 7d")
    s.add_argument("--limit", type=_count, default=50, help="at most this many (default 50)")
    s.add_argument("--offset", type=_count, default=0, help="skip the first N (paging)")
    s = command("show", "one job: its file, variants and timeline")
    s.add_argument("job_id", type=_job_id)
    s = command("retry", "run one failed (or completed) job again from its first step")
    s.add_argument("job_id", type=_job_id)
    s = command("retry-failed", "run the failed jobs again (the latest of each file; never cancelled ones)",
                parents=(out, bulk))
    s.add_argument("--reason", help="only jobs of this typed reason (origin_404, ...), or whose last_error "
                   "contains this text, literally (case-insensitive; %% and _ are plain characters)")
    s = command("republish", "publish a file again (a new job)")
    s.add_argument("file_id", type=_uuid)
    s = command("cancel", "cancel a job that is pending or waiting in the queue (retry-failed skips it)")
    s.add_argument("job_id", type=_job_id)
    s = command("backfill", "a job for every live file never published, or whose last job failed "
                "(rate-limited; stop and run again to resume)", parents=(out, bulk))
    s.add_argument("--rate", type=_rate, default=20.0, help="jobs queued per second at most (default 20)")
    s.add_argument("--limit", type=_count, help="queue at most this many jobs")
    command("maintain", "run one maintenance round now (old jobs, broker rows, deleted files)", parents=(out, bulk))
    command("schema", "the schema version applied and the files pending (exit 1 when some are)")
    command("migrate", "apply the schema files in order (re-runnable; the release step; needs psql)")
    return p


def _count(value: str) -> int:
    if not re.fullmatch(r"\d+", value.strip()):
        raise argparse.ArgumentTypeError(f"not a count (0 or more): {value!r}")
    return int(value)


def _job_id(value: str) -> int:
    if not re.fullmatch(r"\d{1,18}", value.strip()) or int(value) == 0:
        raise argparse.ArgumentTypeError(f"not a job id: {value!r}")
    return int(value)


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not 0 < rate < float("inf"):
        raise argparse.ArgumentTypeError(f"not a rate (jobs per second, above 0): {value!r}")
    return rate


AGE = re.compile(r"(\d+)\s*([smhd])")


def _since(value: str) -> datetime:
    age = AGE.fullmatch(value.strip())
    if age:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[age[2]]
        return datetime.now(timezone.utc) - timedelta(**{unit: int(age[1])})
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time (ISO 8601, or an age such as 2h): {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a file id (uuid): {value!r}") from None


# -- output ---------------------------------------------------------------
def print_json(data) -> None:
    print(output.to_json(data, indent=2))


def confirm(args, what: str) -> bool:
    """Asks on a terminal; elsewhere only --yes goes on (a script must say so)."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise Refused(f"{what}: not on a terminal, so not confirmed; pass --yes to go on (or --dry-run)")
    answer = input(f"{what}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


# -- status ---------------------------------------------------------------
def status(cur, args) -> int:
    snap = queries.status_snapshot(cur, failures=args.failures)
    if args.json:
        print_json(snap)
        return DONE
    print(format_status(snap))
    return DONE


def format_status(snap: dict) -> str:
    jobs, hour = snap["jobs"], snap["last_hour"]
    lines = ["jobs by status:"]
    for s in queries.JOB_STATUSES:
        lines.append(f"  {s:<11} {jobs.get(s, 0)}")
    broker = ", ".join(f"{k} {v}" for k, v in sorted(snap["broker"].items())) or "empty"
    lines.append(f"broker queue (dramatiq.queue): {broker}")
    done, failed = hour["completed"], hour["failed"]
    finished = done + failed
    error_rate = f"{100 * failed / finished:.1f}%" if finished else "n/a"
    lines.append(f"last hour: {done} completed ({done / 60:.2f}/min), {failed} failed; error rate {error_rate}")
    avg = hour["avg_processing_seconds"]
    total = hour["avg_total_seconds"]
    lines.append("average processing time (last hour): "
                 + (f"{avg:.2f}s from first step to published, {total:.2f}s from request" if avg is not None
                    else "n/a (nothing completed)"))
    oldest = snap["oldest_pending"]
    lines.append("oldest pending job: " + (
        f"{oldest['id']} (file {oldest['file_id']}), waiting {_age(oldest['age_seconds'])}" if oldest else "none"))
    if snap["last_failures"]:
        lines.append("last failures:")
        for f in snap["last_failures"]:
            lines.append(f"  job {f['id']} file {f['file_id']} at {f['updated_at']:%Y-%m-%d %H:%M:%S%z} "
                         f"(retries {f['retry_count']}/{f['max_retries']}): {f['last_error']}")
    else:
        lines.append("last failures: none")
    return "\n".join(lines)


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


# -- list and show --------------------------------------------------------
def list_jobs(cur, args) -> int:
    rows = job_reads.list_jobs(cur, status=args.status, reason=args.reason, since=args.since,
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


# -- actions --------------------------------------------------------------
def _report(rows, args) -> int:
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print(("changed: " if row["changed"] else "unchanged: ") + row["message"])
    return DONE if any(r["changed"] for r in rows) else NOTHING_MATCHED


def retry(cur, args) -> int:
    return _report(actions.retry_job(cur, args.job_id), args)


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


def republish(cur, args) -> int:
    return _report(actions.republish_file(cur, args.file_id), args)


def cancel(cur, args) -> int:
    return _report(actions.cancel_job(cur, args.job_id), args)


def backfill(conn, args) -> int:
    with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        todo = backfill_ops.count_candidates(cur)
    if args.limit is not None:
        todo = min(todo, args.limit)
    plan = f"queue a job for {todo} file(s) never published or whose last job failed, at most {args.rate:g}/s"
    if args.dry_run or not todo:
        if args.json:
            print_json({"dry_run": args.dry_run, "files": todo})
        else:
            print(f"would {plan}")
        return DONE if todo else NOTHING_MATCHED
    if not args.json:
        print(plan)
    if not confirm(args, plan):
        print("nothing changed")
        return NOTHING_MATCHED
    from tqdm import tqdm

    with tqdm(total=todo, unit="file", desc="backfill", disable=args.json or None, file=sys.stderr) as bar:
        result = backfill_ops.backfill(conn, rate=args.rate, limit=args.limit, on_page=bar.update)
    if args.json:
        print_json({"queued": result.queued, "skipped": result.skipped})
    else:
        print(f"queued {len(result.queued)} job(s); {result.skipped} file(s) skipped (a job was already active)")
    return DONE if result.queued else NOTHING_MATCHED


def _maintain(args) -> int:
    from publisher.ops.maintenance import Maintenance, MaintenanceError
    from publisher.settings.ops import ops_settings_or_exit
    from publisher.app.runtime import Runtime, settings_or_exit

    ops = ops_settings_or_exit()
    plan = (f"delete completed jobs older than {ops.completed_job_retention_days:g} days, broker rows done "
            f"more than {ops.broker_retention_hours:g} hours ago, and files deleted more than "
            f"{ops.deleted_file_retention_days:g} days ago with their objects")
    if args.dry_run:
        if args.json:
            print_json({"dry_run": True, "plan": plan})
        else:
            print(f"would {plan}")
        return DONE
    if not args.json:
        print(plan)
    if not confirm(args, "run this maintenance round"):
        print("nothing changed")
        return NOTHING_MATCHED
    rt = Runtime(settings_or_exit(), "media-publisher-admin")
    try:
        removed = Maintenance(rt.db, rt.storage, rt.settings, ops, rt.redact).run()
    except MaintenanceError as e:
        print(f"publisher-admin: {e}", file=sys.stderr)
        return PART_FAILED
    if args.json:
        print_json({"removed": removed})
    else:
        for what, n in removed.items():
            print(f"removed: {n} {what.replace('_', ' ')}")
    return DONE


# -- schema ---------------------------------------------------------------
def schema_status(cur, args) -> int:
    files = schema.schema_files()
    recorded = schema.applied(cur)
    todo = schema.pending(files, recorded)
    version = max(recorded, default=None)
    if args.json:
        print_json({"version": version, "pending": [{"file": f.name, "why": why} for f, why in todo]})
        return NOTHING_MATCHED if todo else DONE
    print(f"schema version: {version:03d}" if version is not None else "schema version: none (never migrated)")
    for f, why in todo:
        print(f"pending: {f.name} ({why})")
    if not todo:
        print(f"up to date: {len(files)} files applied")
    return 1 if todo else 0


def _migrate(url: str) -> int:
    try:
        schema.apply(url, echo=print)
    except schema.SchemaError as e:
        print(f"publisher-admin: {e}", file=sys.stderr)
        return USAGE
    print("schema up to date")
    return DONE


COMMANDS = {"status": status, "list": list_jobs, "show": show, "retry": retry, "retry-failed": retry_failed,
            "republish": republish, "cancel": cancel, "schema": schema_status}

if __name__ == "__main__":
    sys.exit(main())

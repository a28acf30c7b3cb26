"""`publisher-admin republish` and `backfill`: new jobs for files of the catalogue."""

from __future__ import annotations

import sys

import psycopg2.extras

from publisher.jobs.store import actions
from publisher.ops import backfill as backfill_ops
from publisher.ops.admin.confirm import confirm
from publisher.ops.admin.exit_codes import DONE, NOTHING_MATCHED
from publisher.ops.admin.jobs import report
from publisher.ops.output import print_json


def republish(cur, args) -> int:
    return report(actions.republish_file(cur, args.file_id), args)


def backfill(conn, args) -> int:
    with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        todo = actions.count_backfill_candidates(cur)
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

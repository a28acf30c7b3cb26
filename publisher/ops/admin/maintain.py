"""`publisher-admin maintain`: one maintenance round now, as the listener runs them."""

from __future__ import annotations

import sys

from publisher.ops.admin.confirm import confirm
from publisher.ops.admin.exit_codes import DONE, NOTHING_MATCHED, PART_FAILED
from publisher.ops.output import print_json


def maintain(args) -> int:
    from listener.maintenance import Maintenance, MaintenanceConfig, MaintenanceError
    from publisher.app.runtime import Runtime, settings_or_exit
    from publisher.settings import fixed

    plan = (f"delete completed jobs older than {fixed.COMPLETED_JOB_RETENTION_DAYS:g} days, broker rows done "
            f"more than {fixed.BROKER_RETENTION_HOURS:g} hours ago, and files deleted more than "
            f"{fixed.DELETED_FILE_RETENTION_DAYS:g} days ago with their objects")
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
        removed = Maintenance(rt.db, rt.storage, MaintenanceConfig.from_constants(),
                              rt.redact).run_once()
    except MaintenanceError as e:
        print(f"publisher-admin: {e}", file=sys.stderr)
        return PART_FAILED
    if args.json:
        print_json({"removed": removed})
    else:
        for what, n in removed.items():
            print(f"removed: {n} {what.replace('_', ' ')}")
    return DONE

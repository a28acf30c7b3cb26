"""`publisher-admin schema` and `migrate`: the schema files applied, and applying them."""

from __future__ import annotations

import sys

from publisher.ops import schema
from publisher.ops.admin.exit_codes import DONE, NOTHING_MATCHED, USAGE
from publisher.ops.output import print_json


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
    return NOTHING_MATCHED if todo else DONE


def migrate(url: str) -> int:
    try:
        schema.apply(url, echo=print)
    except schema.SchemaError as e:
        print(f"publisher-admin: {e}", file=sys.stderr)
        return USAGE
    print("schema up to date")
    return DONE

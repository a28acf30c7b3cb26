"""The question a bulk command asks before it acts."""

from __future__ import annotations

import sys

from publisher.ops.admin.exit_codes import Refused


def confirm(args, what: str) -> bool:
    """Asks on a terminal; elsewhere only --yes goes on (a script must say so)."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise Refused(f"{what}: not on a terminal, so not confirmed; pass --yes to go on (or --dry-run)")
    answer = input(f"{what}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")

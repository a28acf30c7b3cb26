"""What publisher-admin exits with, the same for every command (also in --help)."""

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

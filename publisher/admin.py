"""Kept so that `python -m publisher.admin` goes on working: the tool is publisher.ops.admin."""

import sys

from publisher.ops import admin as _tool

if __name__ == "__main__":
    sys.exit(_tool.main())

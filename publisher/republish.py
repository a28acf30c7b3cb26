"""Kept so that `python -m publisher.republish` goes on working: the tool is publisher.ops.republish."""

import sys

from publisher.ops import republish as _tool

if __name__ == "__main__":
    sys.exit(_tool.main())

"""Kept so that `python -m publisher.probe` goes on working: the tool is publisher.ops.http_probe."""

import sys

from publisher.ops import http_probe as _tool

if __name__ == "__main__":
    sys.exit(_tool.main())

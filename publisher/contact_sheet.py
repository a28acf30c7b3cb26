"""Kept so that `python -m publisher.contact_sheet` goes on working: the tool is publisher.ops.contact_sheet."""

import sys

from publisher.ops import contact_sheet as _tool

if __name__ == "__main__":
    sys.exit(_tool.main())

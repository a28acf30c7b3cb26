"""Kept so that `python -m publisher.admin` goes on working (__main__.py): the tool is
publisher.ops.admin. A package, not a module, so that git follows publisher/admin.py to
its new place."""

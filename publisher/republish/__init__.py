"""Kept so that `python -m publisher.republish` goes on working (__main__.py): the tool is
publisher.ops.republish. A package, not a module, so that git follows publisher/republish.py to
its new place."""

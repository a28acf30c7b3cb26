"""Kept so that `python -m publisher.probe` goes on working (__main__.py): the tool is
publisher.ops.http_probe. A package, not a module, so that git follows publisher/probe.py to
its new place."""

"""Kept so that `python -m publisher.contact_sheet` goes on working (__main__.py): the tool is
publisher.ops.contact_sheet. A package, not a module, so that git follows publisher/contact_sheet.py to
its new place."""

"""What the running service hands to plain SQL (sql/008_settings.sql): the listener
writes each on start, and the database's defaults and functions read them."""

from __future__ import annotations

from .cursor import Cursor

SAVE_SETTING = """
    INSERT INTO publisher_settings (name, value) VALUES (%s, %s)
    ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
     WHERE publisher_settings.value IS DISTINCT FROM EXCLUDED.value
"""


def save(cur: Cursor, name: str, value: object) -> None:
    cur.execute(SAVE_SETTING, (name, str(value)))

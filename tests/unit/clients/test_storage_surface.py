"""The S3 client wrapper offers what the service uses and nothing else: a method
only a benchmark or a test calls is a second way to do the same thing."""

import inspect
import re
from pathlib import Path

from publisher.clients.storage import Storage

ROOT = Path(__file__).resolve().parents[3]
SERVICE = ("publisher", "actors", "listener")


def test_every_public_method_of_storage_is_called_by_the_service():
    source = "\n".join(p.read_text() for top in SERVICE for p in (ROOT / top).rglob("*.py")
                       if p != ROOT / "publisher" / "clients" / "storage.py")
    public = [name for name, _ in inspect.getmembers(Storage, inspect.isfunction) if not name.startswith("_")]
    unused = [name for name in public if not re.search(rf"storage\.{name}\(", source)]
    assert unused == []

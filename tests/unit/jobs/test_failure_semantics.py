"""Pure logic of the failure semantics: what last_error says, what is stored
in broker messages, and that a broken download leaves no file behind."""

import os
import types

import pytest

from devstack.origin import Fault, Origin
from publisher.clients.origin import OriginClient
from publisher.errors import PermanentError, TransientError
from publisher.jobs.store.steps import naming_the_file
from publisher.jobs.stored_tracebacks import RedactStoredTracebacks
from publisher.logs import Redactor

SECRET = "raid-token-unit-1234"


def test_last_error_names_the_file_once():
    assert naming_the_file("variant: corrupt jpeg", "lot-1.jpg") == "variant: corrupt jpeg (raid_key 'lot-1.jpg')"
    assert naming_the_file("fetch: 404 for key 'lot-1.jpg'", "lot-1.jpg") == "fetch: 404 for key 'lot-1.jpg'"
    assert naming_the_file("fetch: boom", None) == "fetch: boom"


@pytest.mark.parametrize("hook", ["before_ack", "before_nack", "before_enqueue"])
def test_tracebacks_stored_in_broker_messages_are_redacted(hook):
    runtime = types.SimpleNamespace(redact=Redactor([SECRET]))
    middleware = RedactStoredTracebacks(lambda: runtime)
    message = types.SimpleNamespace(options={"traceback": f"RuntimeError: token {SECRET} refused", "retries": 1})
    args = (None, message, 0) if hook == "before_enqueue" else (None, message)
    getattr(middleware, hook)(*args)
    assert SECRET not in message.options["traceback"] and "[redacted]" in message.options["traceback"]


@pytest.fixture
def origin(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.jpg").write_bytes(b"\xff\xd8\xff" + b"x" * 200_000)
    server = Origin(tmp_path / "src", SECRET).start()
    yield server
    server.stop()


def client(origin, max_bytes=10_000_000):
    return OriginClient(origin.endpoint, SECRET, connect_timeout=2, read_timeout=5, max_bytes=max_bytes)


def test_a_broken_download_leaves_no_file(origin, tmp_path):
    dest = tmp_path / "out" / "source"
    dest.parent.mkdir()
    origin.faults["a.jpg"] = Fault(truncate_at=1000, times=1)
    with pytest.raises(TransientError, match="truncated|broke off"):
        client(origin).download("a.jpg", str(dest))
    assert os.listdir(dest.parent) == []
    with pytest.raises(PermanentError, match="MAX_SOURCE_BYTES"):
        client(origin, max_bytes=50_000).download("a.jpg", str(dest))
    assert os.listdir(dest.parent) == []
    assert client(origin).download("a.jpg", str(dest)) == 200_003
    assert os.listdir(dest.parent) == ["source"]

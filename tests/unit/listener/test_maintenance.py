"""A maintenance round: its parts, and what pg_cron does instead."""


import pytest


class _FakeDb:
    """Answers the one question Maintenance asks before choosing its parts."""

    def __init__(self, pg_cron: bool):
        self.pg_cron = pg_cron

    def transaction(self):
        import contextlib

        fake = self

        class Cursor:
            def execute(self, statement, params=None):
                self.statement = statement

            def fetchone(self):
                return {"installed": fake.pg_cron, "n": 2 if fake.pg_cron else 0}

            def fetchall(self):
                return []

        return contextlib.nullcontext(Cursor())


def _config():
    from listener.maintenance import MaintenanceConfig

    return MaintenanceConfig.from_constants()


@pytest.mark.parametrize("pg_cron", [True, False])
def test_maintenance_leaves_the_database_side_to_pg_cron_when_it_is_scheduled(pg_cron, monkeypatch):
    from listener.maintenance import Maintenance

    m = Maintenance(_FakeDb(pg_cron), storage=None, config=_config())
    ran = []
    monkeypatch.setattr(m, "purge_completed_jobs", lambda: ran.append("jobs") or 0)
    monkeypatch.setattr(m, "purge_broker_messages", lambda: ran.append("broker") or 0)
    monkeypatch.setattr(m, "purge_deleted_files", lambda: ran.append("files") or 0)
    monkeypatch.setattr(m, "purge_unpublished_objects", lambda: ran.append("superseded") or 0)
    monkeypatch.setattr(m, "purge_job_events", lambda: ran.append("events") or 0)
    monkeypatch.setattr(m, "purge_webhook_events", lambda: ran.append("outbox") or 0)
    monkeypatch.setattr(m, "forget_lost_hosts", lambda: ran.append("hosts") or 0)
    m.run_once()
    listener_only = ["files", "superseded", "events", "outbox", "hosts"]
    assert ran == (listener_only if pg_cron else ["jobs", "broker", *listener_only])


def test_one_failing_maintenance_part_does_not_stop_the_others(monkeypatch):
    from listener.maintenance import Maintenance, MaintenanceError

    m = Maintenance(_FakeDb(False), storage=None, config=_config())
    ran = []

    def broken():
        raise ConnectionError("bucket away")

    monkeypatch.setattr(m, "purge_completed_jobs", broken)
    monkeypatch.setattr(m, "purge_broker_messages", lambda: ran.append("broker") or 3)
    monkeypatch.setattr(m, "purge_deleted_files", lambda: ran.append("files") or 1)
    monkeypatch.setattr(m, "purge_unpublished_objects", lambda: ran.append("superseded") or 0)
    monkeypatch.setattr(m, "purge_job_events", lambda: ran.append("events") or 0)
    monkeypatch.setattr(m, "purge_webhook_events", lambda: ran.append("outbox") or 0)
    monkeypatch.setattr(m, "forget_lost_hosts", lambda: ran.append("hosts") or 0)
    with pytest.raises(MaintenanceError, match="completed_jobs"):
        m.run_once()
    assert ran == ["broker", "files", "superseded", "events", "outbox", "hosts"]


FILE = "0b6f7c2e-8a1d-4c3b-9e5f-1a2b3c4d5e6f"
OTHER = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"


@pytest.mark.parametrize("key", [f"media/{FILE}/thumb-0123.webp", f"{FILE}/a.avif", f"cdn/v2.x/{FILE}/display_1.jpg"])
def test_a_plain_name_right_in_the_files_folder_is_the_files_object(key):
    from listener.maintenance import in_folder_of

    assert in_folder_of(key, FILE)


@pytest.mark.parametrize("key", [
    f"media/{OTHER}/thumb.webp", f"media/{OTHER}/{FILE}/thumb.webp", f"media/{FILE}/../{OTHER}/thumb.webp",
    f"media/x{FILE}/thumb.webp", f"/{FILE}/thumb.webp", f"media//{FILE}/thumb.webp", f"media/{FILE}/",
    f"media/{FILE}/sub/thumb.webp", f"media/{FILE}/.hidden", f"../{FILE}/thumb.webp", "shared/logo.webp",
    f"media/{FILE}/" + "x" * 1100,
])
def test_a_key_anywhere_else_is_not_the_files_object(key):
    from listener.maintenance import in_folder_of

    assert not in_folder_of(key, FILE)

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


#: The parts of a round, each with the name it notes when it runs in these tests.
PARTS = {"purge_completed_jobs": "jobs", "purge_broker_messages": "broker", "purge_deleted_files": "files",
         "purge_unpublished_objects": "superseded", "purge_job_events": "events",
         "purge_webhook_events": "outbox", "forget_lost_hosts": "hosts"}


def _noting_parts(m, monkeypatch, **replaced) -> list[str]:
    """Each part of m's round replaced by replaced[part], or else by one that notes its name
    and removes nothing; the names, in the order the parts run."""
    ran = []
    for part, name in PARTS.items():
        monkeypatch.setattr(m, part, replaced.get(part, lambda name=name: ran.append(name) or 0))
    return ran


@pytest.mark.parametrize("pg_cron", [True, False])
def test_maintenance_leaves_the_database_side_to_pg_cron_when_it_is_scheduled(pg_cron, monkeypatch):
    from listener.maintenance import Maintenance

    m = Maintenance(_FakeDb(pg_cron), storage=None, config=_config())
    ran = _noting_parts(m, monkeypatch)
    m.run_once()
    listener_only = ["files", "superseded", "events", "outbox", "hosts"]
    assert ran == (listener_only if pg_cron else ["jobs", "broker", *listener_only])


def test_one_failing_maintenance_part_does_not_stop_the_others(monkeypatch):
    from listener.maintenance import Maintenance, MaintenanceError

    m = Maintenance(_FakeDb(False), storage=None, config=_config())

    def broken():
        raise ConnectionError("bucket away")

    ran = _noting_parts(m, monkeypatch, purge_completed_jobs=broken)
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

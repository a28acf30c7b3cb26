"""Settings sync: what the running service hands to plain SQL, written to
publisher_settings on every (re)connect (sql/008_settings.sql):

- max_retries: new jobs take MAX_RETRIES as their max_retries, also when
  inserted by plain SQL (INSERT INTO publish_jobs (file_id) ...);
- webhook: ended jobs write their events to the outbox only while a listener
  delivers them (sql/010_publish_events.sql);
- host_alive_seconds: how long a worker host counts as alive after its last beat
  (publisher/jobs/locality.py), for the overview's silent hosts."""

from __future__ import annotations

import dataclasses

from publisher.jobs.locality import host_alive
from publisher.jobs.store import shared_settings


@dataclasses.dataclass(frozen=True)
class SharedSettings:
    max_retries: int
    webhook: bool
    host_alive_seconds: float
    #: Written again now and then, in case an operator changed a row by hand.
    interval: float = 300.0

    @classmethod
    def from_settings(cls, settings, ops) -> SharedSettings:
        return cls(settings.max_retries, bool(ops.webhook_url), host_alive().total_seconds())


class SettingsSync:
    name = "settings sync"

    def __init__(self, db, config: SharedSettings):
        self.db, self.config = db, config
        self.interval = config.interval

    def run_once(self) -> None:
        with self.db.transaction() as cur:
            shared_settings.save(cur, "max_retries", self.config.max_retries)
            shared_settings.save(cur, "webhook", "on" if self.config.webhook else "off")
            shared_settings.save(cur, "host_alive_seconds", f"{self.config.host_alive_seconds:g}")

"""Rescue: jobs whose step lost its lease (counts a retry), whose worker host
stopped beating, or whose message was lost (counts none) start again from their
first step on a live host, under a new token (publisher_rescue)."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

from publisher.jobs.locality import host_alive
from publisher.jobs.store import intake
from publisher.settings import fixed

from .claim import enqueue_claimed


@dataclasses.dataclass(frozen=True)
class RescueConfig:
    #: A quarter lease: a job is rescued within a lease and a quarter of losing it.
    interval: float
    alive: timedelta
    #: How long a step may wait between its predecessor's end and its start before its message counts as lost.
    handoff: timedelta

    @classmethod
    def from_constants(cls) -> RescueConfig:
        return cls(max(1.0, fixed.JOB_LEASE_SECONDS / 4), host_alive(), timedelta(seconds=fixed.JOB_HANDOFF_SECONDS))


class Rescue:
    name = "rescue"

    def __init__(self, rt, broker, stop: threading.Event):
        self.rt, self.broker, self.stop = rt, broker, stop
        self.config = RescueConfig.from_constants()
        self.interval = self.config.interval

    def run_once(self) -> int:
        c = self.config
        return enqueue_claimed(self.rt, self.broker, self.stop,
                               lambda cur, limit: intake.rescue(cur, limit, c.alive, c.handoff),
                               "rescued (step lost its lease, host lost, or message lost)")

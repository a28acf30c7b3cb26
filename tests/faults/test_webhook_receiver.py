"""A webhook receiver that drips its answer (one byte at a time, each well within
any read timeout) while jobs run: every POST is given up at its deadline and
tried again later, and intake goes on: jobs inserted meanwhile are claimed and
complete, once."""

from devstack.ports import free_port, wait_until
from devstack.receiver import Receiver
from tests.faults import harness

#: Seconds one POST may take (PUBLISH_WEBHOOK_TIMEOUT).
DEADLINE = 1


def test_a_webhook_receiver_that_drips(fault_stack, batch):
    dripping = Receiver("drip_headers", drip_interval=0.05, drip_for=600)
    try:
        stack = fault_stack(PUBLISH_WEBHOOK_URL=dripping.url, PUBLISH_WEBHOOK_SECRET="drip-scenario-secret",
                            PUBLISH_WEBHOOK_TIMEOUT=DEADLINE, LISTENER_HTTP_PORT=free_port())
        jobs = batch(stack, "webhook-receiver-drips")
        for i in range(6):
            jobs.add(jobs.source("progressive.jpg" if i % 2 else "exif-orientation-1.jpg"))
        harness.start_workers(stack)
        stack.start_listener()
        wait_until(lambda: dripping.requests, 120, "the first POST to the dripping receiver", 0.1)
        # Inserted while the receiver holds a POST: claimed all the same.
        for i in range(6):
            jobs.add(jobs.source("adobe-rgb.jpg" if i % 2 else "progressive.jpg"))
        jobs.wait()

        def cut_at_the_deadline():
            rows = stack.sql("SELECT attempts, delivered_at, last_error FROM publish_event_outbox")
            return rows if len(rows) == len(jobs.expected) and sum(r["attempts"] for r in rows) >= 3 else None

        rows = wait_until(cut_at_the_deadline, 60, "POSTs given up at their deadline", 0.25)
        jobs.faults = sum(r["attempts"] for r in rows)
        result = jobs.outcome()
        result.assert_clean()
        assert result.completed == 12
        assert all(r["delivered_at"] is None for r in rows)  # a drip never counts as delivered
        assert all("deadline" in r["last_error"] for r in rows if r["attempts"])
    finally:
        dripping.close()

"""The completion webhook end to end: a real listener delivers each ended job's
event to a receiver, signed, at least once, and a receiver that fails or is
gone never holds up or fails a job."""

import hashlib
import hmac
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devstack.ports import free_port, wait_until
from devstack.receiver import Receiver as MisbehavingReceiver

SECRET = "webhook-secret-for-tests"


class Receiver:
    """An application's endpoint: answers each POST with the next scripted status (then 204)."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.received: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/publish"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=()):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


def webhook_stack(make_stack, url):
    stack = make_stack(PUBLISH_WEBHOOK_URL=url, PUBLISH_WEBHOOK_SECRET=SECRET, LISTENER_HTTP_PORT=free_port())
    stack.start_workers(processes=1, threads=2)
    stack.start_listener()
    return stack


def test_each_ended_job_is_posted_signed_and_a_refused_post_is_sent_again_with_the_same_id(make_stack, receiver):
    hook = receiver(statuses=[503])  # the application is briefly down
    stack = webhook_stack(make_stack, hook.url)
    done = stack.wait_for(stack.publish("progressive.jpg"))
    failed = stack.wait_for(stack.publish("not-at-the-origin.jpg"))
    assert done["status"] == "completed" and failed["status"] == "failed"

    wait_until(lambda: {e["job_id"] for e in hook.events()} == {done["id"], failed["id"]} and len(hook.events()) == 3,
               60, "both events, one of them twice", 0.1)
    by_job = {}
    for headers, body in hook.received:
        expected = "sha256=" + hmac.new(SECRET.encode(), headers["x-publisher-timestamp"].encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-publisher-signature"], expected)
        event = json.loads(body)
        assert headers["x-publisher-event-id"] == event["event_id"]
        by_job.setdefault(event["job_id"], []).append(event)
    first = by_job[hook.events()[0]["job_id"]]
    assert len(first) == 2 and first[0] == first[1]  # the retry is the same event: one id to de-duplicate on
    [completed] = by_job[done["id"]][-1:]
    assert completed["type"] == "publish.completed"
    assert completed["variants"]["thumb"]["url"] == done["variants"]["thumb"]["url"]
    assert by_job[failed["id"]][-1]["error"]["reason"] == "origin_404"
    outbox = stack.sql("SELECT count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered FROM publish_event_outbox")
    assert outbox == [{"delivered": 2}]


def test_a_receiver_that_is_gone_never_fails_or_holds_up_a_job(make_stack):
    gone = f"http://127.0.0.1:{free_port()}/nobody-listens"
    stack = webhook_stack(make_stack, gone)
    jobs = [stack.publish(key) for key in ("progressive.jpg", "adobe-rgb.jpg")]
    assert [stack.wait_for(j)["status"] for j in jobs] == ["completed", "completed"]

    def tried():
        rows = stack.sql("SELECT attempts, delivered_at, last_error FROM publish_event_outbox")
        return rows if len(rows) == 2 and all(r["attempts"] >= 1 for r in rows) else None

    rows = wait_until(tried, 30, "the listener to try both events", 0.2)
    assert all(r["delivered_at"] is None and "Connection" in r["last_error"] for r in rows)
    assert "not delivered" in stack.logs() and SECRET not in stack.logs()


def metric(port: int, name: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def test_a_receiver_that_drips_is_given_up_at_the_deadline_and_intake_goes_on(make_stack):
    dripping = MisbehavingReceiver("drip_headers", drip_interval=0.05, drip_for=120)
    try:
        port = free_port()
        stack = make_stack(PUBLISH_WEBHOOK_URL=dripping.url, PUBLISH_WEBHOOK_SECRET=SECRET, PUBLISH_WEBHOOK_TIMEOUT="1",
                           LISTENER_HTTP_PORT=port, METRICS_INTERVAL="0.5")
        stack.start_workers(processes=1, threads=2)
        stack.start_listener()
        first = stack.publish("progressive.jpg")
        assert stack.wait_for(first)["status"] == "completed"
        # While the receiver holds a POST, new jobs are claimed and run.
        wait_until(lambda: dripping.requests, 30, "the first POST", 0.1)
        later = [stack.publish(key) for key in ("adobe-rgb.jpg", "exif-orientation-3.jpg")]
        assert [stack.wait_for(j)["status"] for j in later] == ["completed", "completed"]

        def given_up_at_the_deadline():
            rows = stack.sql("SELECT attempts, delivered_at, last_error FROM publish_event_outbox WHERE attempts > 0")
            return rows or None

        rows = wait_until(given_up_at_the_deadline, 30, "a POST given up at its deadline", 0.2)
        assert all(r["delivered_at"] is None and "deadline" in r["last_error"] for r in rows)
        # Undelivered events are counted where an alert can see them.
        assert wait_until(lambda: (metric(port, "publisher_webhook_outbox_pending") or 0) >= 1, 30,
                          "the outbox backlog in the listener's metrics", 0.2)
    finally:
        dripping.close()


def test_credentials_in_the_webhook_url_are_neither_logged_nor_stored(make_stack):
    user, password, token = "hook-user-5e0c2b", "hook-pass-71ad93", "hook-token-0f6e4d92c1"
    gone = f"http://{user}:{password}@127.0.0.1:{free_port()}/{'h' * 90}?token={token}&v=2"
    stack = webhook_stack(make_stack, gone)
    assert stack.wait_for(stack.publish("progressive.jpg"))["status"] == "completed"
    rows = wait_until(lambda: stack.sql("SELECT last_error FROM publish_event_outbox WHERE attempts > 0") or None,
                      30, "the listener to try the event", 0.2)
    stored = rows[0]["last_error"]
    logs = stack.logs()
    # The receiver is named by scheme://host:port alone: nothing of the rest is quoted.
    assert "not delivered" in logs and "delivering completion events to http://127.0.0.1:" in logs
    assert SECRET not in stored and SECRET not in logs
    for credential in (user, password, token):  # not even in part
        for text in (stored, logs):
            assert not any(credential[i:i + 6] in text for i in range(len(credential) - 6)), (credential, text)


def test_a_secret_in_the_webhook_urls_path_is_neither_logged_nor_stored(make_stack):
    # Slack's and Teams' shape: the credential is the path, not userinfo or query.
    token = "T0Q7RLXK2/B08NWZ3J1V5/hUkPaThSeCrEt4f9cQ2m"
    stack = webhook_stack(make_stack, f"http://127.0.0.1:{free_port()}/services/{token}")
    assert stack.wait_for(stack.publish("progressive.jpg"))["status"] == "completed"
    rows = wait_until(lambda: stack.sql("SELECT last_error FROM publish_event_outbox WHERE attempts > 0") or None,
                      30, "the listener to try the event", 0.2)
    stored, logs = rows[0]["last_error"], stack.logs()
    assert "delivering completion events to http://127.0.0.1:" in logs and "not delivered" in logs
    for part in token.split("/"):  # not even in part
        for text in (stored, logs):
            assert not any(part[i:i + 6] in text for i in range(len(part) - 6)), (part, text)


def test_a_round_sends_no_event_it_could_only_send_after_its_hold_on_it_ends(make_stack, receiver, monkeypatch):
    # Another listener takes an event once its hold ends: one sent after that could go out twice.
    from types import SimpleNamespace

    from listener import outbox
    from publisher.logs import Redactor
    from publisher.settings.ops import load_ops_settings

    hook = receiver()
    stack = make_stack()
    for job in (1, 2, 3):
        stack.sql("INSERT INTO publish_event_outbox (event_id, payload) SELECT e, jsonb_build_object("
                  "'event_id', e, 'job_id', %s) FROM gen_random_uuid() e", (job,))
    ops = load_ops_settings({"PUBLISH_WEBHOOK_URL": hook.url, "PUBLISH_WEBHOOK_SECRET": SECRET,
                             "PUBLISH_WEBHOOK_TIMEOUT": "2"})
    delivery = outbox.OutboxDelivery(stack.db_url, outbox.OutboxConfig.from_settings(ops), Redactor(ops.secrets),
                                     threading.Event())
    # The round's clock: the first POST takes so long (a slow database, say) that too little of the
    # hold is left for another whole POST.
    readings = iter([0.0, 0.0, 10.0 ** 6])
    monkeypatch.setattr(outbox, "time", SimpleNamespace(monotonic=lambda: next(readings)), raising=False)
    delivery.deliver_due()
    assert [e["job_id"] for e in hook.events()] == [1]
    held = stack.sql("SELECT attempts, delivered_at IS NULL AS undelivered, next_attempt_at > now() AS held"
                     "  FROM publish_event_outbox WHERE payload->>'job_id' <> '1'")
    assert held == [{"attempts": 0, "undelivered": True, "held": True}] * 2  # left for whoever takes them next

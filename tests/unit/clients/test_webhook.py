"""The webhook POST against real receivers that misbehave: one deadline over the
whole exchange, a bounded read of the answer, and no proxy from the environment."""

import threading
import time

import pytest

from devstack.ports import free_port
from devstack.receiver import Receiver
from publisher.clients import webhook

SECRET = "webhook-secret-for-unit-tests"
EVENT = {"event_id": "7b0c5e0e-3f43-4a8e-9a57-0d2b8f1f9a11", "type": "publish.completed", "job_id": 7}


@pytest.fixture
def receiver():
    made = []

    def make(answer, **kwargs):
        made.append(Receiver(answer, **kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


def post(url, timeout):
    return webhook.WebhookClient(url, SECRET, timeout).post(EVENT)


@pytest.mark.parametrize("answer", ["drip_headers", "drip_body"])
def test_a_receiver_that_drips_its_answer_is_given_up_at_the_deadline(receiver, answer):
    # One byte every 0.05 s: every single read comes well within the timeout.
    slow = receiver(answer, drip_interval=0.05, drip_for=6.0)
    started = time.monotonic()
    error = post(slow.url, timeout=1.0)
    elapsed = time.monotonic() - started
    assert error is not None and "deadline" in error  # not delivered: it is tried again later
    assert elapsed < 1.0 + 1.5  # the deadline, and slack for a loaded machine


def test_a_huge_answer_is_not_read_past_a_few_kilobytes(receiver):
    huge = receiver("huge_body", huge_bytes=256 * 1024 * 1024)
    assert post(huge.url, timeout=30.0) is None  # a 2xx: delivered, whatever the body says
    # What the socket took before the POST hung up: kernel buffers at most, not the answer.
    assert huge.body_bytes_sent and huge.body_bytes_sent[0] < 64 * 1024 * 1024


def test_proxy_variables_of_the_environment_are_ignored(receiver, monkeypatch):
    ok = receiver("ok")
    nowhere = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, nowhere)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert post(ok.url, timeout=5.0) is None
    assert len(ok.requests) == 1


def test_credentials_in_the_url_never_reach_the_error(receiver):
    gone = free_port()
    query_secret = "q" * 7 + "-Query-Credential-0123456789abcdefghij"
    user, password = "hookuser-4f1d9c2a7e", "hookpass-9b8a7c6d5e4f"
    # The path's length puts the credential across the point where an error gets cut short.
    url = f"http://{user}:{password}@127.0.0.1:{gone}/{'p' * 100}?token={query_secret}&x=1"
    error = post(url, timeout=2.0)
    assert error is not None
    for credential in (query_secret, user, password):
        assert not any(credential[i:i + 8] in error for i in range(len(credential) - 8)), (credential, error)


def post_in_background(url, timeout):
    """The POST, made in a thread of its own: a test can then see whether it ended, however long it hangs."""
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(post(url, timeout)), daemon=True)
    thread.start()
    return thread, outcome


def test_a_receiver_whose_name_never_resolves_is_given_up_at_the_deadline(stalled_resolver):
    thread, outcome = post_in_background(f"http://{stalled_resolver}:{free_port()}/hook", timeout=0.5)
    thread.join(0.5 + 2.5)  # the deadline, and slack for a loaded machine
    assert not thread.is_alive(), "the POST still waits for the name to resolve"
    assert outcome and "deadline" in outcome[0]  # not delivered: it is tried again later


def test_a_receiver_with_several_addresses_that_never_answer_is_given_up_at_the_deadline(blackholed_name):
    # Six addresses: one connect timeout each would be six deadlines.
    thread, outcome = post_in_background(f"http://{blackholed_name}:{free_port()}/hook", timeout=1.0)
    thread.join(1.0 + 2.5)  # the deadline, and slack for a loaded machine
    assert not thread.is_alive(), "the POST still tries one address after another"
    assert outcome and "deadline" in outcome[0]


@pytest.mark.parametrize("path", [
    "/api/webhooks/881234567890123456/Zq-7hT_pAtHsEcReT-w0rds1nThEpAtH",  # Discord's shape: the token is the path
    "/x9Q",  # short, yet the whole of the credential
])
def test_a_secret_in_the_url_path_never_reaches_the_error(path):
    port = free_port()
    error = post(f"http://127.0.0.1:{port}{path}?v=1", timeout=2.0)
    assert error is not None and f"127.0.0.1:{port}" in error  # which receiver: its host and port only
    secret = path.rsplit("/", 1)[1]
    assert not any(secret[i:i + 3] in error for i in range(len(secret) - 2)), error
    assert "?v=1" not in error

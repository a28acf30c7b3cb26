"""The RAID client against real HTTP servers (devstack's RAID stand-in): where
the token may go, encoded answers, and how long a download may take."""

import gzip
import threading
import time

import pytest

from devstack.origin import Fault, Origin
from devstack.ports import free_port
from publisher.clients.origin import OriginClient
from publisher.errors import PermanentError, TransientError
from tests.conftest import CORPUS

TOKEN = "raid-token-for-client-tests"
PHOTO = "exif-orientation-3.jpg"


@pytest.fixture
def raid(tmp_path):
    root = tmp_path / "raid"
    root.mkdir()
    (root / PHOTO).write_bytes((CORPUS / PHOTO).read_bytes())
    server = Origin(root, TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def elsewhere(tmp_path):
    """Another server that accepts the same token, as an attacker's host would."""
    root = tmp_path / "elsewhere"
    root.mkdir()
    (root / "x.jpg").write_bytes((CORPUS / "progressive.jpg").read_bytes())
    server = Origin(root, TOKEN).start()
    yield server
    server.stop()


def client(server, **overrides) -> OriginClient:
    args = dict(connect_timeout=2, read_timeout=2, max_bytes=5_000_000)
    return OriginClient(server.endpoint, TOKEN, **{**args, **overrides})


@pytest.mark.parametrize("location", [
    # urlsplit reads the host after the backslash; urllib3 connects to the one before it.
    "http://localhost:{other}\\@127.0.0.1:{raid}/raid?key=x.jpg",
    "http://localhost:{other}\\\\@127.0.0.1:{raid}/raid?key=x.jpg",
    # userinfo: whatever it says, a redirect that carries credentials is not RAID's doing.
    "http://someone@127.0.0.1:{raid}/raid?key=x.jpg",
    "http://localhost:{other}@127.0.0.1:{raid}/raid?key=x.jpg",
    # control characters and spaces split or re-route the request line.
    "http://127.0.0.1:{raid}/raid?key=x.jpg\t@localhost:{other}",
    "http://127.0.0.1:{raid}/raid?key=x.jpg @localhost:{other}",
])
def test_a_location_the_connecting_parser_reads_differently_is_refused(raid, elsewhere, tmp_path, location):
    key = "lot-7.jpg"
    raid.faults[key] = Fault(redirect_to=location.format(other=elsewhere.port, raid=raid.port))
    with pytest.raises(PermanentError, match="redirect") as refused:
        client(raid).download(key, str(tmp_path / "out"))
    assert refused.value.reason == "origin_redirect"  # what the failure metrics count it as
    assert elsewhere.requests == []  # never contacted, so never given the token
    assert not (tmp_path / "out").exists()


def test_the_token_is_sent_per_request_not_kept_as_a_session_default(raid, tmp_path):
    origin = client(raid)
    assert "Authorization" not in origin._session.headers
    assert origin.download(PHOTO, str(tmp_path / "out")) == (CORPUS / PHOTO).stat().st_size
    assert raid.requests[-1]["authorization"] == f"Bearer {TOKEN}"


def test_a_same_host_redirect_is_still_followed_with_the_token(raid, tmp_path):
    raid.faults["moved.jpg"] = Fault(redirect_to=f"/raid?key={PHOTO}")
    assert client(raid).download("moved.jpg", str(tmp_path / "out")) == (CORPUS / PHOTO).stat().st_size
    assert [r["authorization"] for r in raid.requests] == [f"Bearer {TOKEN}"] * 2


def test_identity_is_asked_for_and_a_gzipped_answer_is_saved_decoded(raid, tmp_path):
    raid.faults[PHOTO] = Fault(gzip=True)
    out = tmp_path / "out"
    original = (CORPUS / PHOTO).read_bytes()
    assert len(gzip.compress(original)) != len(original)
    assert client(raid).download(PHOTO, str(out)) == len(original)
    assert out.read_bytes() == original
    assert raid.requests[-1]["accept_encoding"] == "identity"


def test_a_gzipped_answer_that_inflates_past_the_limit_is_cut_off(raid, tmp_path):
    raid.faults["zeros.jpg"] = Fault(gzip=True, body=b"\xff\xd8\xff" + bytes(20_000_000))
    with pytest.raises(PermanentError, match="over MAX_SOURCE_BYTES=5000000") as refused:
        client(raid).download("zeros.jpg", str(tmp_path / "out"))
    assert refused.value.reason == "too_many_bytes"


def test_a_gzipped_answer_cut_short_is_a_truncated_download(raid, tmp_path):
    body = gzip.compress((CORPUS / PHOTO).read_bytes())
    raid.faults["cut.jpg"] = Fault(body=body, truncate_at=len(body) // 2)
    with pytest.raises(TransientError, match="broke off|truncated") as failed:
        client(raid).download("cut.jpg", str(tmp_path / "out"))
    assert failed.value.reason == "download_incomplete"


def test_a_dripping_origin_is_cut_off_at_the_download_deadline(raid, tmp_path):
    # One byte every 0.2 s: every read succeeds well within the read timeout.
    raid.faults[PHOTO] = Fault(drip=0.2)
    started = time.monotonic()
    with pytest.raises(TransientError, match="took longer than 1.5 s"):
        client(raid, download_timeout=1.5).download(PHOTO, str(tmp_path / "out"))
    assert time.monotonic() - started < 1.5 + 2 + 1  # the deadline, at most one read timeout, slack
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("encoding", ["br", "compress", "zstd, gzip"])
def test_an_encoding_we_cannot_decode_is_refused_not_saved_encoded(raid, tmp_path, encoding):
    raid.faults[PHOTO] = Fault(content_encoding=encoding)
    with pytest.raises(PermanentError, match=f"Content-Encoding {encoding!r}"):
        client(raid).download(PHOTO, str(tmp_path / "out"))
    assert [p.name for p in tmp_path.iterdir()] == ["raid"]  # nothing saved, not even a part file


@pytest.mark.parametrize("status, kind", [(404, PermanentError), (403, PermanentError), (503, TransientError)])
def test_an_origin_answer_is_raised_with_its_status_as_the_reason(raid, tmp_path, status, kind):
    raid.faults["answered.jpg"] = Fault(status=status)
    with pytest.raises(kind) as failed:
        client(raid).download("answered.jpg", str(tmp_path / "out"))
    assert failed.value.reason == f"origin_{status}"


def test_an_origin_that_drips_its_headers_is_cut_off_at_the_download_deadline(raid, tmp_path):
    # One byte of the status line and headers every 0.05 s: each read well within the read timeout.
    raid.faults[PHOTO] = Fault(drip_headers=0.05)
    started = time.monotonic()
    with pytest.raises(TransientError, match="took longer than 1.5 s") as failed:
        client(raid, download_timeout=1.5).download(PHOTO, str(tmp_path / "out"))
    assert time.monotonic() - started < 1.5 + 1.5  # the deadline, and slack for a loaded machine
    assert failed.value.reason == "origin_timeout"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("location", [
    "http://127.0.0.1:70000/raid?key=x.jpg",  # a port past 65535
    "http://127.0.0.1:8o8o/raid?key=x.jpg",  # a port that is no number
    "http://[127.0.0.1/raid?key=x.jpg",  # an unclosed IPv6 bracket
])
def test_a_location_that_cannot_be_parsed_is_a_permanent_redirect_failure(raid, tmp_path, location):
    raid.faults["unparsable.jpg"] = Fault(redirect_to=location)
    with pytest.raises(PermanentError, match="redirect") as refused:
        client(raid).download("unparsable.jpg", str(tmp_path / "out"))
    assert refused.value.reason == "origin_redirect"  # failed at once: no retry can parse it
    assert len(raid.requests) == 1


def download_in_background(endpoint, dest, download_timeout):
    """The download, made in a thread of its own: a test can then see whether it ended, however long it hangs.
    Connect and read timeouts are long: only the download deadline can end it in time."""
    origin = OriginClient(endpoint, TOKEN, connect_timeout=30, read_timeout=30, max_bytes=5_000_000,
                          download_timeout=download_timeout)
    outcome = []

    def run():
        try:
            origin.download(PHOTO, dest)
        except Exception as e:
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_an_origin_whose_name_never_resolves_is_given_up_at_the_download_deadline(stalled_resolver, tmp_path):
    thread, outcome = download_in_background(f"http://{stalled_resolver}:{free_port()}/raid", str(tmp_path / "out"),
                                             download_timeout=0.5)
    thread.join(0.5 + 2.5)  # the deadline, and slack for a loaded machine
    assert not thread.is_alive(), "the download still waits for the name to resolve"
    assert isinstance(outcome[0], TransientError) and outcome[0].reason == "origin_timeout"


def test_an_origin_with_several_addresses_that_never_answer_is_given_up_at_the_download_deadline(
        blackholed_name, tmp_path):
    # Six addresses: the deadline for each would be six deadlines.
    thread, outcome = download_in_background(f"http://{blackholed_name}:{free_port()}/raid", str(tmp_path / "out"),
                                             download_timeout=1.0)
    thread.join(1.0 + 2.5)  # the deadline, and slack for a loaded machine
    assert not thread.is_alive(), "the download still tries one address after another"
    assert isinstance(outcome[0], TransientError) and outcome[0].reason == "origin_timeout"
    assert not (tmp_path / "out").exists()

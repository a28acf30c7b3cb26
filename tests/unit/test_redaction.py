"""Secrets are redacted whatever form they take in a message: in a URL's query
string, percent-encoded, or short; and every command installs the redaction."""

import os
import subprocess
import sys

import pytest

from devstack.procs import ROOT
from publisher.logs import Redactor
from publisher.settings.job import load_settings

BASE = {
    "RAID_PUB_ENDPOINT": "https://raid.internal/pub", "RAID_PUBLISHER_SECRET": "raid-secret-0042",
    "B2_KEY_ID": "key-id", "B2_APP_KEY": "b2-app-key-0042", "B2_BUCKET": "media",
    "B2_ENDPOINT": "s3.example.com", "B2_REGION": "r1", "CDN_BASE_URL": "https://cdn.example.com",
}


def redactor_for(database_url: str) -> Redactor:
    return Redactor(load_settings(dict(BASE, DATABASE_URL=database_url)).secrets)


@pytest.mark.parametrize("url, password", [
    ("postgresql://app@db.internal/auctions?password=Qv7-xx-19&sslmode=require", "Qv7-xx-19"),
    ("postgresql://db.internal/auctions?user=app&password=Qv7%2Bxx%2F19", "Qv7+xx/19"),
    ("postgresql://app:Qv7%40xx%3A19@db.internal/auctions", "Qv7@xx:19"),
])
def test_a_database_password_is_redacted_in_every_form_it_appears(url, password):
    redact = redactor_for(url)
    for text in (f"could not connect to {url}", f"password authentication failed: {password!r}",
                 f"dsn: host=db.internal password={password} dbname=auctions"):
        out = redact(text)
        assert password not in out and url not in out, out
        assert "[redacted]" in out


def test_a_password_given_as_a_libpq_keyword_is_redacted_without_knowing_it():
    out = Redactor()("invalid dsn: host=h port=5432 password=unknown-to-us dbname=x")
    assert "unknown-to-us" not in out and "dbname=x" in out


@pytest.mark.parametrize("secret", ["k9x", "7", "ab"])
def test_short_secrets_are_redacted_where_they_stand_alone(secret):
    redact = Redactor([secret])
    assert secret not in redact(f"token {secret} refused").split()
    assert redact(f"the password was {secret}.") == "the password was [redacted]."
    # Inside other words a short secret is not a secret: logs stay readable.
    assert redact("publishing job 17 of batch 2026 (about 8 KB)") == "publishing job 17 of batch 2026 (about 8 KB)"


LEAKS_IN_REPUBLISH = """
import os, sys
from publisher.ops import republish

def leaky(*args, **kwargs):
    raise RuntimeError("cannot count files at " + os.environ["DATABASE_URL"] + " with " + os.environ["B2_APP_KEY"])

republish.republish = leaky
sys.exit(republish.main(["--dry-run"]))
"""


def test_republish_redacts_what_it_writes():
    password = "republish-pw-5521"
    env = dict(BASE, PATH=os.environ["PATH"],
               DATABASE_URL=f"postgresql://postgres:{password}@127.0.0.1:5432/postgres")
    result = subprocess.run([sys.executable, "-c", LEAKS_IN_REPUBLISH], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "cannot count files at postgresql://postgres:[redacted]@" in output
    assert password not in output and BASE["B2_APP_KEY"] not in output

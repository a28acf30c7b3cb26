"""RabbitMQ for tests: a virtual host of its own per test system.

The machine's RabbitMQ server (TEST_AMQP_URL, default amqp://guest:guest@127.0.0.1:5672/)
is shared by every test run on it. Each system gets a fresh vhost, made and
removed with `rabbitmqctl` (root on the machine), so queues, priorities and
leftover messages of one run never meet another's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _rabbitmqctl(*args: str) -> str:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    if not os.path.exists(ctl):
        raise RuntimeError("rabbitmqctl is missing: the RabbitMQ tests need the machine's RabbitMQ server")
    done = subprocess.run([ctl, "-q", *args], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


class Vhost:
    """A virtual host on the machine's RabbitMQ, with full rights for the URL's user."""

    def __init__(self, server_url: str | None = None, prefix: str = "mp_test"):
        self.server_url = server_url or os.environ.get("TEST_AMQP_URL", DEFAULT_URL)
        self.name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.user = urlsplit(self.server_url).username or "guest"

    @property
    def url(self) -> str:
        """BROKER_URL for this vhost (the vhost is the URL's path, percent-encoded)."""
        return urlunsplit(urlsplit(self.server_url)._replace(path="/" + quote(self.name, safe="")))

    def create(self) -> Vhost:
        _rabbitmqctl("add_vhost", self.name)
        _rabbitmqctl("set_permissions", "-p", self.name, self.user, ".*", ".*", ".*")
        return self

    def queues(self) -> dict[str, int]:
        """The vhost's queues and how many messages each holds."""
        out = _rabbitmqctl("list_queues", "-p", self.name, "--no-table-headers", "name", "messages")
        return {name: int(n) for name, n in (line.split("\t") for line in out.splitlines() if "\t" in line)}

    def delete(self) -> None:
        _rabbitmqctl("delete_vhost", self.name)

"""Services some tests need beyond what `make test` starts itself.

CI (CI=true) has them all and never skips: a missing one fails the run. On a
laptop without RabbitMQ or root, those tests are skipped with the reason.
"""

import os
import shutil
import socket

import pytest

RABBITMQ = ("127.0.0.1", 5672)


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI must have it)")
    pytest.skip(f"{what}; CI runs this test")


def need_rabbitmq() -> None:
    try:
        socket.create_connection(RABBITMQ, timeout=2).close()
    except OSError:
        _missing("no RabbitMQ answers at {}:{}".format(*RABBITMQ))
    if not shutil.which("rabbitmqctl"):
        _missing("rabbitmqctl is not installed (it makes a vhost per test system)")


def need_network_namespaces() -> None:
    if os.geteuid() != 0 or not shutil.which("ip"):
        _missing("hosts as network namespaces need root and iproute2's `ip`")

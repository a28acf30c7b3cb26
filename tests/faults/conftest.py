import tempfile
from pathlib import Path

import pytest

from devstack import own_postgres
from tests.faults import harness
from tests.support.stack import Stack

# A fresh summary per run; the lines are printed at the end (and pasted into the README).
harness.SUMMARY_FILE.parent.mkdir(parents=True, exist_ok=True)
harness.SUMMARY_FILE.write_text("")


def pytest_terminal_summary(terminalreporter):
    if harness.SUMMARY:
        terminalreporter.section("fault suite summary")
        for line in harness.SUMMARY:
            terminalreporter.write_line(line)


@pytest.fixture
def fault_stack(make_stack):
    """A stack with the fault suite's settings (short leases); processes are started by each test."""
    stacks = []

    def make(**env):
        stack = make_stack(**{**harness.FAST_ENV, **{k: str(v) for k, v in env.items()}})
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        harness.stop_all(stack)


@pytest.fixture
def batch(origin_root):
    def make(stack, scenario):
        return harness.Batch(stack, scenario, origin_root)

    return make


@pytest.fixture
def own_pg():
    """A PostgreSQL server of the test's own: for a scenario that restarts it (the machine's
    is shared), or whose figures must not depend on what other tests do to a shared one."""
    server = own_postgres.start()
    yield server
    server.stop()


@pytest.fixture
def own_pg_stack(own_pg, s3, origin, tmp_path, broker):
    """fault_stack, on own_pg."""
    stacks = []

    def make(**env):
        stack = Stack(own_pg, s3, origin, Path(tempfile.mkdtemp(dir=tmp_path)), broker=broker,
                      **{**harness.FAST_ENV, **{k: str(v) for k, v in env.items()}})
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        harness.stop_all(stack)
        stack.stop()

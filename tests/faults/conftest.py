import pytest

from tests.faults import harness

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

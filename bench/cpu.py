"""CPU seconds by component of the system under test, from /proc, so a run on
a shared machine can say where the CPU went and how much other users took."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU of one process (all its threads), 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def machine_busy_s() -> float:
    """CPU seconds all processes of the machine spent, all cores together."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / TICKS


def _processes_whose_command(matches) -> list[int]:
    """Pids of the machine's processes whose command line (a list of bytes) `matches`."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if matches(args):
                pids.append(int(entry))
    return pids


def _backends_of(dbname: str) -> list[int]:
    """PostgreSQL server processes serving this database (their title names it)."""
    return _processes_whose_command(lambda args: args[0].startswith(b"postgres: ") and
                                    f" {dbname} ".encode() in b" ".join(args))


def _rabbitmq_server() -> list[int]:
    """The machine's RabbitMQ node (Erlang's beam.smp running the rabbit application)."""
    return _processes_whose_command(lambda args: args[0].endswith(b"beam.smp") and b"rabbit" in args)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(p) for p in f.read().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


def component_pids(stack, s3_pid: int) -> dict[str, list[int]]:
    dbname = urlsplit(stack.db_url).path.lstrip("/")
    components = {
        "workers": [stack.workers.pid, *_children(stack.workers.pid)],
        "listener": [stack.listener.pid],
        "postgres (this database)": _backends_of(dbname),
        "s3 server": [s3_pid, *_children(s3_pid)],
        "origin + harness": [os.getpid()],
    }
    if stack.broker == "rabbitmq":
        # The whole node: the test's vhost is the only busy one while the benchmark runs.
        components["rabbitmq (the node)"] = _rabbitmq_server()
    return components


def snapshot(stack, s3_pid: int) -> dict:
    return {"components": {name: {pid: process_cpu_s(pid) for pid in pids}
                           for name, pids in component_pids(stack, s3_pid).items()},
            "machine": machine_busy_s()}


#: The component that is not the system under test: everything else the machine ran.
OTHERS = "other users of the machine"


def system_total(per_component: dict) -> float:
    """The system under test's share of a per-component figure (other users left out)."""
    return sum(value for name, value in per_component.items() if name != OTHERS)


def spent(before: dict, after: dict) -> dict:
    """CPU seconds per component between two snapshots, and what the rest of the machine used."""
    out = {}
    for name, pids in after["components"].items():
        old = before["components"].get(name, {})
        out[name] = sum(cpu - old.get(pid, 0.0) for pid, cpu in pids.items())
    ours = sum(out.values())
    out[OTHERS] = max(0.0, after["machine"] - before["machine"] - ours)
    return out

"""Hosts on one machine: each a network namespace joined to the machine by a
veth pair, with its own worker processes and its own scratch directory.

A host reaches the machine's services only through forwarders bound to the
machine-side address of its veth pair (devstack/forward.py), so its processes
talk to PostgreSQL, RabbitMQ, S3 and the origin over a network link that a
test can cut, and to no other address. Needs root (CI runs as root).
"""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import signal
import subprocess
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from . import procs
from .cpulimit import CpuLimit
from .forward import Forwarder
from .ports import wait_until

IP = shutil.which("ip") or "/usr/sbin/ip"
#: Hosts get /24 networks inside this private range.
NETWORKS = ipaddress.ip_network("10.200.0.0/16")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([IP, *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def _networks_in_use() -> set[ipaddress.IPv4Network]:
    out = _ip("-4", "-o", "addr", "show").stdout
    return {ipaddress.ip_interface(line.split()[3]).network for line in out.splitlines()}


class Host:
    """One namespace and its veth pair: `gateway` (machine side) and `address` (inside)."""

    def __init__(self, name: str, network: ipaddress.IPv4Network, root: Path, cores: float | None = None):
        self.name = name
        self.run_id = uuid.uuid4().hex[:6]
        self.netns = f"mp-{self.run_id}-{name}"
        self.veth = f"mpv{self.run_id}"  # machine side; at most 15 characters
        self.peer = f"mpn{self.run_id}"
        hosts = list(network.hosts())
        self.gateway, self.address = str(hosts[0]), str(hosts[1])
        self.prefix = network.prefixlen
        self.root = root
        self.scratch = root / "scratch"
        self.processes: list[procs.Process] = []
        self.forwarders: list[Forwarder] = []
        self._created = False
        #: The host's CPU budget (None: it competes for the whole machine).
        self.cpu_limit = CpuLimit(f"host-{name}", cores) if cores else None

    @property
    def host_id(self) -> str:
        """The id its workers take (publisher/jobs/host_identity.py): the hostname, which the
        namespaces share, and the id kept in this host's scratch directory."""
        from publisher.jobs.host_identity import default_host_id

        return default_host_id(str(self.scratch))

    def create(self) -> Host:
        self.scratch.mkdir(parents=True, exist_ok=True)
        if self.cpu_limit:
            self.cpu_limit.create()
        _ip("netns", "add", self.netns)
        self._created = True
        _ip("link", "add", self.veth, "type", "veth", "peer", "name", self.peer, "netns", self.netns)
        _ip("addr", "add", f"{self.gateway}/{self.prefix}", "dev", self.veth)
        _ip("link", "set", self.veth, "up")
        _ip("-n", self.netns, "addr", "add", f"{self.address}/{self.prefix}", "dev", self.peer)
        _ip("-n", self.netns, "link", "set", self.peer, "up")
        _ip("-n", self.netns, "link", "set", "lo", "up")
        return self

    # -- what the host reaches ------------------------------------------
    def forward(self, port: int, target_host: str = "127.0.0.1") -> None:
        """Makes target_host:port of the machine answer at gateway:port inside the host."""
        self.forwarders.append(Forwarder((self.gateway, port), (target_host, port)).start())

    def unplug(self, port: int) -> None:
        """The service on `port` becomes unreachable from this host: its connections are cut, new ones refused."""
        for forwarder in [f for f in self.forwarders if f.listen[1] == port]:
            forwarder.stop()
            self.forwarders.remove(forwarder)

    def plug(self, port: int) -> None:
        """The service on `port` is reachable again."""
        self.forward(port)

    def env(self, env: dict) -> dict:
        """The machine's loopback URLs in `env`, rewritten to reach the same services from this host,
        with this host's own name, scratch and temporary directories. Starts the forwarders they need."""
        env = dict(env)
        for name in ("DATABASE_URL", "BROKER_URL", "B2_ENDPOINT", "RAID_PUB_ENDPOINT"):
            if env.get(name):
                env[name] = self._through_gateway(env[name])
        if env.get("DATABASE_URL"):
            # A non-local host would get sslmode=require; the test server has no TLS.
            parts = urlsplit(env["DATABASE_URL"])
            query = dict(parse_qsl(parts.query), sslmode="disable")
            env["DATABASE_URL"] = urlunsplit(parts._replace(query=urlencode(query)))
        # Namespaces share the machine's hostname: each host is told apart by its scratch directory.
        env.update(SCRATCH_DIR=str(self.scratch), TMPDIR=str(self.root), HOME=str(self.root))
        # The RAID stand-in speaks plain HTTP, now reached across the namespaces' link.
        env.setdefault("RAID_ALLOW_PLAIN_HTTP", "true")
        return env

    def _through_gateway(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"{parts.hostname} is not on this machine's loopback")
        port = parts.port or {"postgresql": 5432, "postgres": 5432, "amqp": 5672, "http": 80}[parts.scheme]
        if port not in {f.listen[1] for f in self.forwarders}:
            self.forward(port)
        netloc = parts.netloc.rsplit("@", 1)
        netloc[-1] = f"{self.gateway}:{port}"
        return urlunsplit(parts._replace(netloc="@".join(netloc)))

    # -- processes --------------------------------------------------------
    def start(self, name: str, args: list[str], env: dict) -> procs.Process:
        log = self.root / f"{self.name}-{name}-{uuid.uuid4().hex[:4]}.log"
        args = [IP, "netns", "exec", self.netns, *args]
        if self.cpu_limit:
            args = self.cpu_limit.wrap(args)
        process = procs.Process(f"{self.name}/{name}", args, env, log)
        self.processes.append(process)
        return process

    def start_workers(self, env: dict, processes: int = 1, threads: int = 1, queues=()) -> procs.Process:
        args = [str(procs.BIN / "dramatiq"), "actors", "--processes", str(processes), "--threads", str(threads)]
        if queues:
            args += ["--queues", *queues]
        return self.start("workers", args, env)

    def start_listener(self, env: dict) -> procs.Process:
        return self.start("listener", [str(procs.BIN / "python"), "-m", "listener"], env)

    def pids(self) -> list[int]:
        if not self._created:
            return []
        out = _ip("netns", "pids", self.netns, check=False).stdout
        return [int(p) for p in out.split()]

    def freeze(self) -> None:
        """Stops every process in the host where it stands (SIGSTOP), so what it has
        written to the database can be read before it dies, with nothing more to come."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass

    def kill(self, timeout: float = 15) -> None:
        """Stops the host abruptly: every process in it gets SIGKILL, nothing is shut down cleanly.
        Returns once none is left (children of the killed processes included)."""

        def all_gone():
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for process in self.processes:
                process.popen.poll()  # reaps the ones this process started
            return not self.pids()

        wait_until(all_gone, timeout, f"the processes of host {self.name} to die", 0.05)

    def cut(self) -> None:
        """Takes the host off the network: its veth goes down, its processes keep running."""
        _ip("link", "set", self.veth, "down")

    def logs(self) -> str:
        return "\n".join(p.log() for p in self.processes)

    def destroy(self) -> None:
        """Removes everything the host was made of; safe to call on a half-made host."""
        try:
            for process in self.processes:
                process.stop(timeout=20)
            self.kill()
        finally:
            for forwarder in self.forwarders:
                forwarder.stop()
            _ip("link", "del", self.veth, check=False)
            if self._created:
                _ip("netns", "del", self.netns, check=False)
                self._created = False
            if self.cpu_limit:
                self.cpu_limit.remove()


class Hosts:
    """Several hosts, made together and always removed together (a context manager)."""

    def __init__(self, names: list[str], root: str | os.PathLike, cores_per_host: float | None = None):
        self.root = Path(root)
        self.cores_per_host = cores_per_host
        self.hosts: dict[str, Host] = {}
        self._names = names

    def __enter__(self) -> Hosts:
        try:
            used = _networks_in_use()
            free = [n for n in NETWORKS.subnets(new_prefix=24) if n not in used]
            for name, network in zip(self._names, random.sample(free, len(self._names))):
                host = Host(name, network, self.root / name, self.cores_per_host)
                self.hosts[name] = host
                host.create()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc):
        self.destroy()

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def __iter__(self):
        return iter(self.hosts.values())

    def destroy(self) -> None:
        # Every process is asked to stop at once, so their shutdowns overlap.
        for host in self.hosts.values():
            for process in host.processes:
                process.signal(signal.SIGTERM)
        for host in self.hosts.values():
            for process in host.processes:
                try:
                    process.popen.wait(20)
                except subprocess.TimeoutExpired:
                    pass  # host.destroy() kills it
        errors = []
        for host in self.hosts.values():
            try:
                host.destroy()
            except Exception as e:  # remove the others all the same
                errors.append(e)
        if errors:
            raise errors[0]

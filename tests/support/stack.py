"""A whole publishing system for a test: its own database, the shared S3 server
and origin, and the listener and workers started as an operator starts them."""

from __future__ import annotations

import json
import sys
import urllib.request
import uuid
from pathlib import Path

from devstack import postgres, procs
from devstack.ports import free_port, wait_until
from devstack.rabbitmq import Vhost
from tests.support.prerequisites import need_rabbitmq

CDN = "https://cdn.example.test"
TOKEN = "raid-token-" + "s3cr3t-7f3a9c"


#: The brokers a system can run on: "postgres" (dramatiq-pg, the default) or "rabbitmq".
BROKERS = ("postgres", "rabbitmq")


def fixed_for_tests(env: dict) -> dict:
    """`env` with the names of constants of publisher/settings/fixed.py (a lease, a timeout, a
    retention age) moved into PUBLISHER_TEST_FIXED, the test-only way the processes take them."""
    from publisher.settings import fixed

    constants = {k: v for k, v in env.items() if k.isupper() and hasattr(fixed, k)}
    if not constants:
        return env
    overrides = {**json.loads(env.get(fixed.TEST_OVERRIDES, "{}")), **constants}
    rest = {k: v for k, v in env.items() if k not in constants}
    return {**rest, fixed.TEST_OVERRIDES: json.dumps(overrides)}


class Stack:
    def __init__(self, pg, s3, origin, tmp: Path, broker: str = "postgres", root: Path | None = None, **env):
        """root: the source tree whose schema and processes run (default this one)."""
        self.pg, self.s3, self.origin, self.tmp = pg, s3, origin, tmp
        self.broker = broker
        self.root = Path(root or procs.ROOT)
        self.db_url = pg.create_database()
        pg.apply_sql(self.db_url, self.root / "sql")
        # RabbitMQ: a vhost of its own, so no other system sees its queues.
        if broker == "rabbitmq":
            need_rabbitmq()
        self.vhost = Vhost().create() if broker == "rabbitmq" else None
        self.env = {
            "PATH": str(procs.BIN) + ":/usr/bin:/bin",
            "HOME": str(tmp),
            "TMPDIR": str(tmp),
            "DATABASE_URL": self.db_url,
            "RAID_PUB_ENDPOINT": origin.endpoint,
            "RAID_PUBLISHER_SECRET": TOKEN,
            "B2_KEY_ID": s3.access_key,
            "B2_APP_KEY": s3.secret_key,
            "B2_BUCKET": s3.bucket,
            "B2_ENDPOINT": s3.endpoint,
            "B2_REGION": "us-east-1",
            "CDN_BASE_URL": CDN,
            "WORKER_POLL_INTERVAL": "1000",
            "LOG_LEVEL": "info",
            # Shorter times than a deployment's (constants, not settings: fixed_for_tests).
            "JOB_LEASE_SECONDS": "10",
            "RETRY_MIN_BACKOFF_MS": "200",
            "RETRY_MAX_BACKOFF_MS": "2000",
            "SCRATCH_DIR": str(tmp / "scratch"),
            # Metrics and health endpoints off unless a test asks for them:
            # stacks of parallel tests must not race for fixed ports.
            "LISTENER_HTTP_PORT": "0",
            "WORKER_METRICS_PORT": "0",
        }
        if self.vhost is not None:
            self.env["BROKER_URL"] = self.vhost.url
        if self.root != procs.ROOT:
            self.env["PYTHONPATH"] = str(self.root)
        self.env.update({k: str(v) for k, v in env.items()})
        self.env = fixed_for_tests(self.env)
        self.workers = None
        self.listener = None
        self.web = None
        #: Every process started, so that stop() ends them all (also when a test starts two).
        self.processes: list[procs.Process] = []
        #: Processes a harness started on its own (the fault suite's workers); stop() ends them too.
        self.extra_processes: list[procs.Process] = []

    # -- processes ------------------------------------------------------
    def start_workers(self, processes: int = 2, threads: int = 3):
        self.workers = procs.start_workers(self.env, self.tmp / f"workers-{uuid.uuid4().hex[:6]}.log",
                                           processes, threads, self.root)
        self.processes.append(self.workers)
        return self.workers

    def start_listener(self):
        self.listener = procs.start_listener(self.env, self.tmp / f"listener-{uuid.uuid4().hex[:6]}.log", self.root)
        self.processes.append(self.listener)
        return self.listener

    def start_web(self) -> str:
        """publisher-web (`python -m publisher.web`) on a free port, once it answers /healthz; its address."""
        port = free_port()
        self.web = procs.Process("web", [sys.executable, "-m", "publisher.web"], {**self.env, "WEB_PORT": str(port)},
                                 self.tmp / f"web-{uuid.uuid4().hex[:6]}.log", self.root)
        self.processes.append(self.web)
        url = f"http://127.0.0.1:{port}"

        def serving():
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                return answer.status == 200

        wait_until(serving, 30, "publisher-web to serve", 0.1)
        return url

    def stop(self):
        # Listeners stop before the workers they feed; a harness may also have set .workers itself.
        for p in [*reversed(self.processes), self.listener, self.workers, *self.extra_processes]:
            if p is not None and p.running():
                p.stop()
        self.pg.drop_database(self.db_url)
        if self.vhost is not None:
            self.vhost.delete()

    @property
    def scratch(self) -> Path:
        """The worker host's scratch directory."""
        return Path(self.env["SCRATCH_DIR"])

    def scratch_folders(self) -> list[Path]:
        """What the scratch directory holds but the file that names the host (publisher/jobs/host_identity.py)."""
        from publisher.jobs.host_identity import IDENTITY_FILE

        return [p for p in self.scratch.iterdir() if p.name != IDENTITY_FILE]

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.rglob("*.log")))

    # -- database -------------------------------------------------------
    def sql(self, statement: str, params=()):
        return postgres.query(self.db_url, statement, params)

    def add_file(self, raid_key: str) -> str:
        return self.sql("INSERT INTO auction_files (raid_key) VALUES (%s) RETURNING id::text", (raid_key,))[0]["id"]

    def request_publish(self, file_id: str) -> int:
        # Exactly what the function that inserts jobs does.
        return self.sql("INSERT INTO publish_jobs (file_id) VALUES (%s) RETURNING id", (file_id,))[0]["id"]

    def publish(self, raid_key: str) -> int:
        return self.request_publish(self.add_file(raid_key))

    def job(self, job_id: int) -> dict:
        return self.sql(
            "SELECT j.*, f.publish_status, f.variants, f.published_at, f.width, f.height "
            "FROM publish_jobs j JOIN auction_files f ON f.id = j.file_id WHERE j.id = %s", (job_id,))[0]

    def wait_for(self, job_id: int, statuses=("completed", "failed"), timeout: float = 120) -> dict:
        def done():
            row = self.job(job_id)
            return row if row["status"] in statuses else None

        try:
            return wait_until(done, timeout, f"job {job_id} to reach {statuses}", 0.1)
        except TimeoutError:
            raise AssertionError(
                f"job {job_id} stuck: {self.job(job_id)}\n--- logs ---\n{self.logs()[-6000:]}") from None

    # -- bucket ---------------------------------------------------------
    def object(self, key: str) -> tuple[bytes, dict]:
        client = self.s3.client()
        response = client.get_object(self.s3.bucket, key)
        try:
            return response.read(), dict(response.headers)
        finally:
            response.close()
            response.release_conn()

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(o.object_name for o in self.s3.client().list_objects(self.s3.bucket, prefix, recursive=True))

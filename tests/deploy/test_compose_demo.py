"""`docker compose --profile demo up`, as far as this machine allows: no Docker
engine, so each service runs as the process its container would run, with the
compose files' own settings (.env.compose, deploy/compose-s3.json,
deploy/demo/seed.sql, the raid service's command). The samples are published
and their CDN URLs open without credentials, as from the host."""

import subprocess
import sys
import urllib.request

import pytest
import yaml

from devstack import procs
from devstack.ports import free_port, wait_until
from devstack.run import read_env_file
from devstack.s3 import SeaweedS3

pytestmark = pytest.mark.e2e

ROOT = procs.ROOT


def test_the_demo_profile_publishes_the_samples_where_anyone_can_open_them(make_stack, tmp_path):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    env = read_env_file(ROOT / ".env.compose")
    s3 = SeaweedS3(tmp_path / "s3", env["B2_BUCKET"], env["B2_KEY_ID"], env["B2_APP_KEY"],
                   s3_config=ROOT / "deploy" / "compose-s3.json").start()
    try:
        # Its health check answers without credentials (the listener and workers wait for it).
        health = compose["s3"]["healthcheck"]["test"][-1].replace(":8333/", f":{s3.port}/")
        assert urllib.request.urlopen(health).status == 200

        # raid: the compose command, on a free port, serving what compose mounts at /samples,
        # from the directory its devstack/ is mounted in.
        port = free_port()
        raid_service = compose["raid"]
        samples = next(v.split(":")[0] for v in raid_service["volumes"] if ":/samples:" in v)
        replace = {"/samples": str(ROOT / samples), "0.0.0.0": "127.0.0.1", "8080": str(port)}
        args = [replace.get(arg, arg) for arg in raid_service["command"]]
        assert args[0] == "python"
        raid = procs.Process("raid", [sys.executable, *args[1:]], {"PATH": "/usr/bin:/bin", **env},
                             tmp_path / "raid.log")
        wait_until(lambda: socket_answers(port), 20, "the RAID stand-in", 0.1)

        stack = make_stack(RAID_PUB_ENDPOINT=env["RAID_PUB_ENDPOINT"].replace("raid:8080", f"127.0.0.1:{port}"),
                           RAID_PUBLISHER_SECRET=env["RAID_PUBLISHER_SECRET"],
                           B2_ENDPOINT=s3.endpoint, B2_BUCKET=env["B2_BUCKET"], B2_KEY_ID=env["B2_KEY_ID"],
                           B2_APP_KEY=env["B2_APP_KEY"],
                           CDN_BASE_URL=env["CDN_BASE_URL"].replace("localhost:8333", f"127.0.0.1:{s3.port}"))
        stack.processes.append(raid)
        # demo-jobs: the seed file, twice (a second `up` queues nothing new).
        for _ in range(2):
            subprocess.run([str(stack.pg.psql), stack.db_url, "-v", "ON_ERROR_STOP=1", "-q", "-f",
                            str(ROOT / "deploy" / "demo" / "seed.sql")], check=True, capture_output=True)
        jobs = [r["id"] for r in stack.sql("SELECT id FROM publish_jobs ORDER BY id")]
        assert len(jobs) == 5

        stack.start_workers(processes=1, threads=3)
        stack.start_listener()
        for job in jobs:
            row = stack.wait_for(job)
            assert row["status"] == "completed", row["last_error"]
            for variant in row["variants"].values():
                with urllib.request.urlopen(variant["url"]) as response:  # no credentials
                    assert response.status == 200 and response.headers["Content-Type"] == "image/webp"
    finally:
        s3.stop()


def socket_answers(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return True
    except OSError:
        return False

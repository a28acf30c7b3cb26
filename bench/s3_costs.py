"""What each S3 request a job makes costs in CPU, on the S3 server (SeaweedFS, as in
the system benchmarks) and in the client (publisher.clients.storage, as the workers use it):

    python -m bench.s3_costs [N]

A job makes one PUT per published variant and no other request; the other kinds
are priced for comparison: the release before staged each original (a PUT of the
whole file) and each variant, checked, read and published it (HEAD, GET, PUT,
HEAD) and removed the staging area (LIST + DELETE). Prints CPU ms per request:
the CPU of N requests in a row divided by N (N = 60 by default).
"""

from __future__ import annotations

import io
import os
import resource
import sys
import tempfile
import time
from types import SimpleNamespace

from devstack.s3 import SeaweedS3
from publisher.clients.storage import Storage

from . import inputs
from .cpu import process_cpu_s

VARIANT_BYTES = 110_000  # about one variant of the 12 MP photo (display 190 kB, thumb 25 kB)


def own_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def stat_missing(client, key: str) -> None:
    from minio.error import S3Error

    try:
        client.stat_object("bench", key)
    except S3Error:
        pass


def main(n: int) -> None:
    from minio.commonconfig import CopySource

    with tempfile.TemporaryDirectory(prefix="mp-s3costs-") as tmp:
        s3 = SeaweedS3(tmp, bucket="bench").start()
        try:
            storage = Storage(SimpleNamespace(b2_bucket="bench", cdn_base_url=""), client=s3.client())
            client = storage.client
            source = str(inputs.photo(12))
            variant = os.urandom(VARIANT_BYTES)

            def measure(label, request):
                time.sleep(1)  # let the server finish what the last batch started
                server, client, wall = process_cpu_s(s3.process.pid), own_cpu_s(), time.perf_counter()
                for i in range(n):
                    request(i)
                server = (process_cpu_s(s3.process.pid) - server) / n * 1000
                client = (own_cpu_s() - client) / n * 1000
                wall = (time.perf_counter() - wall) / n * 1000
                print(f"  {label:44} server {server:5.1f}  client {client:5.1f}  wall {wall:5.1f}", flush=True)

            print(f"S3 requests on SeaweedFS (weed mini), {n} of each; CPU ms per request")
            size = os.path.getsize(source)
            measure(f"PUT the original ({size / 1e6:.1f} MB, fput_object)",
                    lambda i: client.fput_object("bench", f"staging/{i}/source", source))
            measure(f"PUT a variant ({VARIANT_BYTES // 1000} kB)",
                    lambda i: storage.put_stream(f"staging/{i}/v.webp", io.BytesIO(variant), len(variant),
                                                 "image/webp"))
            measure("HEAD (stat_object), object there", lambda i: client.stat_object("bench", f"staging/{i}/v.webp"))
            measure("HEAD (stat_object), no such object", lambda i: stat_missing(client, f"public/{i}/v.webp"))
            measure(f"GET a variant ({VARIANT_BYTES // 1000} kB)", lambda i: storage.get_bytes(f"staging/{i}/v.webp"))
            measure("server-side copy of a variant (CopyObject)", lambda i: storage.client.copy_object(
                "bench", f"public/{i}/v.webp", CopySource("bench", f"staging/{i}/v.webp")))
            measure("LIST + DELETE a staging area of 2 objects",
                    lambda i: storage.remove_prefix(f"staging/{i}/"))
        finally:
            s3.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)

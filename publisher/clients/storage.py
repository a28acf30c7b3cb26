"""The bucket behind the CDN (Backblaze B2 through its S3 API), via the MinIO client."""

from __future__ import annotations

from urllib.parse import urlsplit

import certifi
import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject

from publisher.settings.job import Settings

#: Published variants never change: a new image gets a new key.
IMMUTABLE = "public, max-age=31536000, immutable"

#: Seconds to connect to, and to wait on, the S3 endpoint.
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 60


def endpoint_parts(endpoint: str) -> tuple[str, bool]:
    """B2_ENDPOINT as minio wants it: (host[:port], secure). A bare host means https."""
    parts = urlsplit(endpoint if "://" in endpoint else "https://" + endpoint)
    return parts.netloc, parts.scheme == "https"


#: A few quick retries inside one attempt; longer outages are the job's retries.
STEP_RETRIES = urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504])


def make_client(settings: Settings, *, connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT,
                retries: urllib3.Retry | bool = STEP_RETRIES, maxsize: int = 16) -> Minio:
    """The one place a MinIO client is built: the steps' (the defaults), or a health
    check's (short timeouts, no retries)."""
    host, secure = endpoint_parts(settings.b2_endpoint)
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        maxsize=maxsize,
        cert_reqs="CERT_REQUIRED",
        ca_certs=certifi.where(),
        retries=retries,
    )
    return Minio(
        host,
        access_key=settings.b2_key_id,
        secret_key=settings.b2_app_key,
        secure=secure,
        region=settings.b2_region,
        http_client=http,
    )


class Storage:
    """The bucket sees only published objects: one PUT each, whose 200 is trusted
    (S3 reads are consistent after a write), and no read on the way."""

    def __init__(self, settings: Settings, client: Minio | None = None):
        self.client = client or make_client(settings)
        self.bucket = settings.b2_bucket
        self.cdn_base_url = settings.cdn_base_url

    def url(self, key: str) -> str:
        return f"{self.cdn_base_url}/{key}"

    def put_stream(self, key: str, stream, length: int, content_type: str, cache_control: str | None = None) -> None:
        """PUTs `length` bytes read from an open file (the one that was hashed, not a path opened again)."""
        headers: dict[str, str | list[str] | tuple[str]] | None = (
            {"Cache-Control": cache_control} if cache_control else None)
        self.client.put_object(self.bucket, key, stream, length, content_type=content_type, metadata=headers)

    def get_bytes(self, key: str) -> bytes:
        response = self.client.get_object(self.bucket, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def remove_keys(self, keys) -> None:
        """Removes objects in bulk; removing a key that is not there is no error in S3."""
        errors = self.client.remove_objects(self.bucket, (DeleteObject(key) for key in keys))
        for error in errors:
            raise RuntimeError(f"could not remove {error.name}: {error.message}")

    def remove_prefix(self, prefix: str) -> None:
        objects = self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
        self.remove_keys(o.object_name for o in objects)

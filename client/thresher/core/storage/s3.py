"""An S3 bucket prefix as storage, through boto3 (the ``s3`` extra).

Credentials come from boto3's usual chain (environment, profile, instance role). The endpoint is,
in order: the ``endpoint_url`` argument, ``$THRESHER_S3_ENDPOINT_URL``, then boto3's own settings
(``$AWS_ENDPOINT_URL_S3``, ``$AWS_ENDPOINT_URL``, the profile), else AWS. A ``client`` argument or
:func:`set_default_client` replaces all of that with a client you built. Timeouts and retries come
from :mod:`thresher.core.storage.timeouts` (``$THRESHER_STORAGE_*``), read when a storage is opened.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any, cast

from thresher.core.settings import Settings, env_name
from thresher.core.storage.base import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_PAGE_SIZE,
    Entry,
    SharedClients,
    Storage,
    check_range,
    join_key,
    mapped_errors,
)
from thresher.core.storage.storage_errors import (
    StorageAccessDeniedError,
    StorageError,
    StorageNotFoundError,
    StorageUnavailableError,
)
from thresher.core.storage.timeouts import StorageTimeouts, timed_out_error

ENDPOINT_ENV = env_name("s3_endpoint_url")

_ACCESS_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "403",
        "AccountProblem",
    }
)
_MISSING_BUCKET_CODES = frozenset({"NoSuchBucket"})
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# Answers that say the endpoint is down or overloaded, not that the request was wrong (as GCS maps them).
_UNAVAILABLE_CODES = frozenset(
    {"502", "503", "504", "429", "ServiceUnavailable", "SlowDown", "Throttling", "ThrottlingException"}
)


def client_for(endpoint_url: str | None = None, timeouts: StorageTimeouts | None = None) -> Any:
    """A shared boto3 S3 client for ``endpoint_url`` with ``timeouts`` (default: from the environment)."""
    key = (endpoint_url or Settings.read("s3_endpoint_url") or None, timeouts or StorageTimeouts.from_env())
    return _clients.get(key, explicit=endpoint_url is not None)


def set_default_client(client: Any) -> None:
    """Makes ``client`` (a boto3 S3 client, or None to go back to the default) serve S3 storage."""
    _clients.default = client


def _new_client(key: tuple[str | None, StorageTimeouts]) -> Any:
    import boto3
    from botocore.config import Config

    endpoint_url, timeouts = key
    # Path-style addressing for custom endpoints: bucket names as host names do not resolve there.
    config = Config(
        retries={"total_max_attempts": timeouts.attempts, "mode": "standard"},
        max_pool_connections=32,
        connect_timeout=timeouts.connect,
        read_timeout=timeouts.read,
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


_clients = SharedClients(_new_client)


class S3Storage(Storage):
    """The objects under ``s3://bucket/prefix``."""

    def __init__(self, bucket: str, prefix: str = "", *, client: Any = None, endpoint_url: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.uri = f"s3://{bucket}/{self.prefix}"
        self.timeouts = StorageTimeouts.from_env()
        self.client = client if client is not None else client_for(endpoint_url, self.timeouts)

    def key(self, path: str) -> str:
        return join_key(self.prefix, path)

    def object_uri(self, path: str) -> str:
        return f"s3://{self.bucket}/{self.key(path)}"

    def pages(self, prefix: str = "", page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[list[Entry]]:
        paginator = self.client.get_paginator("list_objects_v2")
        strip = len(self.prefix)
        with self._errors(prefix, listing=True):
            for response in paginator.paginate(
                Bucket=self.bucket, Prefix=self.key(prefix), PaginationConfig={"PageSize": page_size}
            ):
                page = [
                    Entry(
                        item["Key"][strip:],
                        item["Size"],
                        _nanoseconds(item["LastModified"]),
                        item.get("ETag", "").strip('"') or None,
                    )
                    for item in response.get("Contents", ())
                    if not item["Key"].endswith("/")
                ]
                if page:
                    yield page

    def stat(self, path: str) -> Entry:
        with self._errors(path):
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(path))
        return Entry(
            path, head["ContentLength"], _nanoseconds(head["LastModified"]), head.get("ETag", "").strip('"') or None
        )

    def read(self, path: str, start: int = 0, end: int | None = None) -> bytes:
        check_range(start, end)
        if end is not None and end == start:
            return b""
        with self._errors(path):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self.key(path), **_range(start, end))
            except Exception as error:
                if _code(error) == "InvalidRange":  # the range starts past the end: read short, as slicing does
                    return b""
                raise
            return cast(bytes, response["Body"].read())  # boto3 has no type information

    def stream(
        self, path: str, start: int = 0, end: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        check_range(start, end)
        if end is None or end > start:
            yield from self.open_range(path, start, end, chunk_size)[1]

    def open_range(
        self, path: str, start: int = 0, end: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> tuple[Entry, Iterator[bytes]]:
        """One GET: its headers give the entry (size from Content-Range), its body the stream."""
        check_range(start, end)
        if end is not None and end == start:
            return self.stat(path), iter(())
        with self._errors(path):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self.key(path), **_range(start, end))
            except Exception as error:
                if _code(error) == "InvalidRange":  # the range starts past the end: nothing to stream
                    return self.stat(path), iter(())
                raise
        total = response.get("ContentRange", "").rpartition("/")[2]
        size = int(total) if total.isdigit() else response["ContentLength"]
        entry = Entry(path, size, _nanoseconds(response["LastModified"]), response.get("ETag", "").strip('"') or None)
        return entry, self._body(path, response["Body"], chunk_size)

    def _body(self, path: str, body: Any, chunk_size: int) -> Iterator[bytes]:
        with self._errors(path):
            try:
                yield from body.iter_chunks(chunk_size)
            finally:
                body.close()

    def write(self, path: str, data: bytes) -> None:
        with self._errors(path):
            self.client.put_object(Bucket=self.bucket, Key=self.key(path), Body=data)

    def write_file(self, path: str, local_path: str | os.PathLike[str]) -> None:
        with self._errors(path):
            self.client.upload_file(os.fspath(local_path), self.bucket, self.key(path))

    def delete(self, path: str) -> None:
        with self._errors(path):
            self.client.delete_object(Bucket=self.bucket, Key=self.key(path))

    def url(self, path: str, expires: int = 3600) -> str:
        """A presigned GET URL (signed locally, no request made)."""
        with self._errors(path):
            return cast(
                str,
                self.client.generate_presigned_url(
                    "get_object", Params={"Bucket": self.bucket, "Key": self.key(path)}, ExpiresIn=expires
                ),
            )

    def _errors(self, path: str, listing: bool = False) -> contextlib.AbstractContextManager[None]:
        return mapped_errors(lambda error: _storage_error(self, error, path, listing))


def _storage_error(storage: S3Storage, error: Exception, path: str, listing: bool) -> StorageError | None:
    """The storage error for a boto3 failure on ``path``, naming the bucket or object."""
    from botocore import exceptions as bx

    what = f"objects under {storage.object_uri(path)}" if listing else storage.object_uri(path)
    code = _code(error)
    if code in _MISSING_BUCKET_CODES:
        return StorageNotFoundError(f"S3 bucket {storage.bucket!r} does not exist (reading {what})")
    if code in _MISSING_KEY_CODES:
        if not _bucket_exists(storage):
            return StorageNotFoundError(f"S3 bucket {storage.bucket!r} does not exist (reading {what})")
        return StorageNotFoundError(f"{what} does not exist")
    if code in _ACCESS_CODES:
        return StorageAccessDeniedError(f"access denied to {what} ({code}): check the AWS credentials")
    if isinstance(error, bx.NoCredentialsError | bx.PartialCredentialsError):
        return StorageAccessDeniedError(f"no AWS credentials found to read {what}: {error}")
    endpoint = storage.client.meta.endpoint_url
    if (timed_out := timed_out_error("S3", endpoint, what, error, _timeouts_of(storage), str(error))) is not None:
        return timed_out
    if isinstance(
        error,
        bx.EndpointConnectionError
        | bx.ConnectionClosedError
        | bx.ResponseStreamingError
        | bx.HTTPClientError
        | bx.IncompleteReadError,
    ):  # the connection dropped mid-body
        return StorageUnavailableError(f"cannot reach the S3 endpoint {endpoint} for {what}: {error}")
    if code in _UNAVAILABLE_CODES:
        return StorageUnavailableError(
            f"the S3 endpoint {endpoint} answered {code} (down or overloaded) for {what}, {_attempts(error)}: {error}"
        )
    if isinstance(error, bx.ClientError | bx.BotoCoreError):
        return StorageError(f"S3 failed on {what}: {error}")
    return None


def _timeouts_of(storage: S3Storage) -> StorageTimeouts:
    """The timeouts the storage's client runs with (a client passed in has its own)."""
    config = storage.client.meta.config
    return StorageTimeouts(config.connect_timeout, config.read_timeout)


def _attempts(error: Exception) -> str:
    """How many attempts botocore made, as its error response records them."""
    attempts = getattr(error, "response", {}).get("ResponseMetadata", {}).get("RetryAttempts")
    return "after 1 attempt" if not attempts else f"after {attempts + 1} attempts"


def _bucket_exists(storage: S3Storage) -> bool:
    """Whether the bucket exists (asked only to word a 404, which S3 gives for both)."""
    try:
        storage.client.head_bucket(Bucket=storage.bucket)
    except Exception as error:  # noqa: BLE001 - any failure here leaves the object error as it was
        return _code(error) not in ("404", "NoSuchBucket")
    return True


def _code(error: BaseException) -> str:
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _range(start: int, end: int | None) -> dict[str, str]:
    if start == 0 and end is None:
        return {}
    return {"Range": f"bytes={start}-" + ("" if end is None else str(end - 1))}


def _nanoseconds(instant: Any) -> int:
    microsecond: int = instant.microsecond  # a datetime from boto3
    return int(instant.timestamp()) * 1_000_000_000 + microsecond * 1000

"""A Google Cloud Storage bucket prefix as storage, through google-cloud-storage (the ``gcs`` extra).

Credentials come from Google's application-default chain. ``$STORAGE_EMULATOR_HOST`` (the library's
own setting) points every client at an emulator, anonymously; an ``endpoint_url`` argument does the
same for one storage; a ``client`` argument or :func:`set_default_client` uses a client you built.

Every call passes the ``(connect, read)`` timeouts and a retry bounded in attempts and in time from
:mod:`thresher.core.storage.timeouts` (``$THRESHER_STORAGE_*``), read when a storage is opened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import os
from collections.abc import Iterator
from typing import Any, cast

from thresher.core.storage.base import (
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

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
POOL_SIZE = 32


def client_for(endpoint_url: str | None = None) -> Any:
    """A shared google-cloud-storage client for ``endpoint_url`` (see the module docstring)."""
    # The emulator setting is part of the key: the library reads it when a client is made.
    return _clients.get((endpoint_url, os.environ.get(EMULATOR_ENV)), explicit=endpoint_url is not None)


def set_default_client(client: Any) -> None:
    """Makes ``client`` (a ``google.cloud.storage.Client``, or None for the default) serve GCS storage."""
    _clients.default = client


def _new_client(key: tuple[str | None, str | None]) -> Any:
    from google.cloud import storage
    from requests.adapters import HTTPAdapter

    endpoint_url = key[0]
    with mapped_errors(_credentials_error):
        if endpoint_url:
            client = storage.Client(
                project=os.environ.get("GOOGLE_CLOUD_PROJECT") or "thresher",
                client_options={"api_endpoint": endpoint_url},
                use_auth_w_custom_endpoint=False,
            )
        else:
            client = storage.Client()
    # The session's pool holds 10 connections; parallel downloads use more, and would reconnect each time.
    for scheme in ("http://", "https://"):
        client._http.mount(scheme, HTTPAdapter(pool_connections=POOL_SIZE, pool_maxsize=POOL_SIZE))
    return client


_clients = SharedClients(_new_client)


def _credentials_error(error: Exception) -> StorageError | None:
    from google.auth.exceptions import DefaultCredentialsError

    if isinstance(error, DefaultCredentialsError):
        return StorageAccessDeniedError(f"no Google Cloud credentials found for a storage client: {error}")
    return None


class GCSStorage(Storage):
    """The objects under ``gs://bucket/prefix``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        endpoint_url: str | None = None,
        retry_deadline: float | None = None,
    ) -> None:
        self.bucket_name = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.uri = f"gs://{bucket}/{self.prefix}"
        self.client = client if client is not None else client_for(endpoint_url)
        self._bucket = self.client.bucket(bucket)
        timeouts = StorageTimeouts.from_env()
        self.timeouts = timeouts if retry_deadline is None else dataclasses.replace(timeouts, deadline=retry_deadline)
        self._retry = bounded_retry(self.timeouts)
        self._timeout = self.timeouts.pair

    def key(self, path: str) -> str:
        return join_key(self.prefix, path)

    def object_uri(self, path: str) -> str:
        return f"gs://{self.bucket_name}/{self.key(path)}"

    def pages(self, prefix: str = "", page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[list[Entry]]:
        strip = len(self.prefix)
        with self._errors(prefix, listing=True):
            listing = self.client.list_blobs(
                self.bucket_name, prefix=self.key(prefix), page_size=page_size, retry=self._retry, timeout=self._timeout
            )
            for response in listing.pages:
                page = [_entry(blob, blob.name[strip:]) for blob in response if not blob.name.endswith("/")]
                if page:
                    yield page

    def stat(self, path: str) -> Entry:
        blob = self._bucket.blob(self.key(path))
        with self._errors(path):
            blob.reload(retry=self._retry, timeout=self._timeout)
        return _entry(blob, path)

    def read(self, path: str, start: int = 0, end: int | None = None) -> bytes:
        check_range(start, end)
        if end is not None and end == start:
            return b""
        from google.api_core.exceptions import RequestRangeNotSatisfiable

        blob = self._bucket.blob(self.key(path))
        whole = start == 0 and end is None
        with self._errors(path):
            try:
                # The library verifies a whole object's checksum; a range has none to verify against.
                return cast(
                    bytes,
                    blob.download_as_bytes(  # google-cloud-storage has no type information
                        start=start or None,
                        end=None if end is None else end - 1,
                        retry=self._retry,
                        timeout=self._timeout,
                        **({} if whole else {"checksum": None}),
                    ),
                )
            except RequestRangeNotSatisfiable:
                return b""  # the range starts past the end: read short, as slicing does

    def write(self, path: str, data: bytes) -> None:
        with self._errors(path):
            self._bucket.blob(self.key(path)).upload_from_string(data, retry=self._retry, timeout=self._timeout)

    def write_file(self, path: str, local_path: str | os.PathLike[str]) -> None:
        with self._errors(path):
            self._bucket.blob(self.key(path)).upload_from_filename(
                os.fspath(local_path), retry=self._retry, timeout=self._timeout
            )

    def delete(self, path: str) -> None:
        from google.api_core.exceptions import NotFound

        with self._errors(path):
            try:
                self._bucket.blob(self.key(path)).delete(retry=self._retry, timeout=self._timeout)
            except NotFound:
                if not self._bucket_exists():
                    raise

    def url(self, path: str, expires: int = 3600) -> str | None:
        """A V4 signed URL when the credentials can sign; None otherwise (anonymous, emulators)."""
        from google.auth.exceptions import GoogleAuthError

        try:
            return cast(
                str,
                self._bucket.blob(self.key(path)).generate_signed_url(
                    version="v4", expiration=dt.timedelta(seconds=expires), method="GET"
                ),
            )
        except (AttributeError, GoogleAuthError):  # credentials without a private key cannot sign
            return None

    def _bucket_exists(self) -> bool:
        """Whether the bucket exists (asked only to word a NOT_FOUND, which GCS gives for both)."""
        try:
            return cast(bool, self._bucket.exists(retry=None, timeout=self._timeout))
        except Exception:  # noqa: BLE001 - any failure here leaves the object error as it was
            return True

    def _errors(self, path: str, listing: bool = False) -> contextlib.AbstractContextManager[None]:
        return mapped_errors(lambda error: _storage_error(self, error, path, listing))


def _storage_error(storage: GCSStorage, error: Exception, path: str, listing: bool) -> StorageError | None:
    """The storage error for a google-cloud-storage failure on ``path``, naming the bucket or object."""
    import http.client

    import requests
    import urllib3
    from google.api_core import exceptions as gx
    from google.auth import exceptions as ax

    what = f"objects under {storage.object_uri(path)}" if listing else storage.object_uri(path)
    if isinstance(error, gx.RetryError) and error.cause is not None:
        error = error.cause
    endpoint = getattr(storage.client._connection, "API_BASE_URL", "storage.googleapis.com")
    if (timed_out := timed_out_error("GCS", endpoint, what, error, storage.timeouts, _first_line(error))) is not None:
        return timed_out
    if isinstance(error, gx.ServiceUnavailable | gx.BadGateway | gx.GatewayTimeout | gx.TooManyRequests):
        attempts = storage.timeouts.attempts
        return StorageUnavailableError(
            f"the GCS endpoint {endpoint} answered {error.code} (down or overloaded) for "
            f"{what}, after at most {attempts} attempts: {_first_line(error)}"
        )
    if isinstance(error, gx.NotFound):
        if listing or not storage._bucket_exists():
            return StorageNotFoundError(f"GCS bucket {storage.bucket_name!r} does not exist (reading {what})")
        return StorageNotFoundError(f"{what} does not exist")
    if isinstance(error, gx.Forbidden | gx.Unauthorized | ax.RefreshError | ax.DefaultCredentialsError):
        return StorageAccessDeniedError(f"access denied to {what}: {_first_line(error)}")
    if isinstance(
        error,
        requests.ConnectionError
        | requests.Timeout
        | requests.exceptions.ChunkedEncodingError
        | http.client.HTTPException
        | urllib3.exceptions.HTTPError
        | ax.TransportError
        | gx.RetryError
        | ConnectionError,
    ):  # refused, reset, or dropped mid-body
        return StorageUnavailableError(f"cannot reach the GCS endpoint {endpoint} for {what}: {_first_line(error)}")
    if isinstance(error, gx.GoogleAPIError):
        return StorageError(f"GCS failed on {what}: {_first_line(error)}")
    return None


def bounded_retry(timeouts: StorageTimeouts) -> Any:
    """google-cloud-storage's default retry, stopping after ``timeouts.attempts`` attempts or
    ``timeouts.deadline`` seconds, whichever comes first; None (no retry) for one attempt."""
    from google.api_core.retry import Retry
    from google.cloud.storage.retry import DEFAULT_RETRY

    if timeouts.attempts <= 1:
        return None

    # Defined here because google's packages are imported only once GCS is used (the ``gcs`` extra).
    class BoundedRetry(Retry):
        # google's Retry knows only a deadline; each wrapped call gets its own count of attempts. Its
        # with_* copies make this class again, so they keep the bound.
        def __call__(self, func: Any, on_error: Any = None) -> Any:
            retryable, attempt = self._predicate, itertools.count(2)
            counted = Retry(
                predicate=lambda error: retryable(error) and next(attempt) <= timeouts.attempts,
                initial=self._initial,
                maximum=self._maximum,
                multiplier=self._multiplier,
                timeout=self._timeout,
                on_error=self._on_error,
            )
            return counted(func, on_error)

    return BoundedRetry(predicate=DEFAULT_RETRY._predicate, timeout=timeouts.deadline)  # noqa: SLF001


def _entry(blob: Any, path: str) -> Entry:
    updated = blob.updated
    mtime = int(updated.timestamp()) * 1_000_000_000 + updated.microsecond * 1000 if updated else 0
    # The MD5 names the content (a rewrite of the same bytes is no change); composite objects only have an etag.
    return Entry(path, int(blob.size or 0), mtime, blob.md5_hash or blob.crc32c or blob.etag)


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__

"""Download URLs of datapoints: URLs a generic tool can fetch, by the source's kind.

``file://`` for local sources, a presigned URL for S3 sources (a V4 signed URL for GCS when the
credentials can sign), and otherwise a Flight URL: ``grpc://<flight address>?ticket=<ticket>``, where
the ticket is the base64url of a ``FlightTicket`` holding a ``FileTicket``, which any Arrow Flight
client can pass to DoGet. Other schemes can register their own builder.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from thresher.core.storage.storage_errors import StorageError
from thresher.v1 import flight_pb2

# Builds the URL of `path` inside a source, by the source URI's scheme; None: no URL of that kind
# (the flight URL is used instead).
URL_BUILDERS: dict[str, Callable[[str, str], str | None]] = {}
PRESIGNED_EXPIRY = 3600


def register_url_builder(scheme: str, builder: Callable[[str, str], str | None]) -> None:
    """Makes ``builder(source_uri, path)`` give the download URLs of sources with this URI scheme."""
    URL_BUILDERS[scheme] = builder


def download_url(source_uri: str, path: str) -> str | None:
    """The URL the builder for ``source_uri``'s scheme gives for ``path``; None when there is none."""
    scheme, sep, _ = source_uri.partition("://")
    builder = URL_BUILDERS.get(scheme) if sep else None
    return builder(source_uri, path) if builder else None


def flight_url(datasource: Any, path: str) -> str:
    """The Flight URL of a datasource's file (see the module docstring)."""
    connection = datasource.connection
    ticket = flight_pb2.FlightTicket(file=flight_pb2.FileTicket(datasource_id=datasource.id, path=path))
    encoded = base64.urlsafe_b64encode(ticket.SerializeToString()).decode().rstrip("=")
    return f"{'grpc+tls' if connection.tls else 'grpc'}://{connection.flight_address}?ticket={encoded}"


def datapoint_url(source_uri: str, path: str, datasource: Any = None) -> str | None:
    """The best URL for a datapoint: its scheme's builder, else the flight URL (None without a datasource)."""
    url = download_url(source_uri, path)
    if url is None and datasource is not None:
        url = flight_url(datasource, path)
    return url


def datapoint_urls(source_uri: str, paths: Sequence[str], datasource: Any = None) -> list[str | None]:
    """``datapoint_url`` for many paths of one source."""
    return [datapoint_url(source_uri, path, datasource) for path in paths]


def _file_url(source_uri: str, path: str) -> str:
    return source_uri.rstrip("/") + "/" + quote(path)


def _signed_url(source_uri: str, path: str) -> str | None:
    from thresher import downloads
    from thresher.core.storage import open_storage

    try:
        storage = open_storage(source_uri, client=downloads.bucket_client(source_uri.partition("://")[0]))
        return storage.url(path, PRESIGNED_EXPIRY)
    except StorageError:  # no credentials to sign with: the flight URL serves instead
        return None


register_url_builder("file", _file_url)
register_url_builder("s3", _signed_url)
register_url_builder("gs", _signed_url)

"""Creating, finding and listing datasources (module-level; the default connection unless one is given)."""

from __future__ import annotations

import os
import pathlib

from thresher.connection import Connection, resolve
from thresher.core.errors import InvalidArgumentError
from thresher.core.scan_status import PENDING, ScanStatus
from thresher.datasource import Datasource
from thresher.v1 import common_pb2, scanner_service_pb2
from thresher.v1 import metadata_service_pb2 as ms

_PAGE_SIZE = 500


def source_uri(source: str | os.PathLike[str], revision: str | None = None) -> str:
    """The URI sent for ``source``: URIs and repository paths (with a revision) as given, local paths as
    absolute ``file://`` URIs."""
    text = os.fspath(source)
    if not text:
        raise InvalidArgumentError("a datasource needs a source: a local folder or a URI")
    if "://" in text or revision:
        return text
    return pathlib.Path(text).expanduser().resolve().as_uri()


def create_datasource(
    namespace: str,
    name: str,
    source: str | os.PathLike[str],
    revision: str | None = None,
    *,
    connection: Connection | None = None,
) -> Datasource:
    """Creates datasource ``name`` in ``namespace`` over ``source`` and starts its scan.

    AlreadyExistsError if the name is taken in the namespace.
    """
    conn = resolve(connection)
    response = conn.call_metadata(
        "CreateDatasource",
        ms.CreateDatasourceRequest(
            namespace=namespace, name=name, source_uri=source_uri(source, revision), revision=revision or ""
        ),
    )
    return _start_scan(conn, response.datasource)


def get_or_create(
    namespace: str,
    name: str,
    source: str | os.PathLike[str],
    revision: str | None = None,
    *,
    connection: Connection | None = None,
) -> Datasource:
    """The datasource ``name`` in ``namespace``, created over ``source`` (and scanned) if it does not exist."""
    conn = resolve(connection)
    response = conn.call_metadata(
        "GetOrCreateDatasource",
        ms.GetOrCreateDatasourceRequest(
            namespace=namespace, name=name, source_uri=source_uri(source, revision), revision=revision or ""
        ),
    )
    # A datasource whose scan never started (its creator could not reach the scanner) is started too.
    if response.created or ScanStatus.from_proto(response.datasource.scan).state == PENDING:
        return _start_scan(conn, response.datasource)
    return Datasource(conn, response.datasource)


def _start_scan(conn: Connection, proto: common_pb2.Datasource) -> Datasource:
    response = conn.call_scanner("StartScan", scanner_service_pb2.StartScanRequest(datasource_id=proto.id))
    proto.scan.CopyFrom(response.scan)
    return Datasource(conn, proto)


def get_datasource(
    namespace: str | None = None,
    name: str | None = None,
    id: int | None = None,
    *,
    connection: Connection | None = None,
) -> Datasource:
    """A datasource by namespace and name, or by id. NotFoundError if there is none."""
    if id is None and not (namespace and name):
        raise InvalidArgumentError("get_datasource needs a namespace and a name, or an id")
    request = (
        ms.GetDatasourceRequest(id=id) if id is not None else ms.GetDatasourceRequest(namespace=namespace, name=name)
    )
    conn = resolve(connection)
    return Datasource(conn, conn.call_metadata("GetDatasource", request, idempotent=True).datasource)


def get_datasources(namespace: str, *, connection: Connection | None = None) -> list[Datasource]:
    """Every datasource in ``namespace``."""
    conn = resolve(connection)
    datasources: list[Datasource] = []
    token = ""
    while True:
        response = conn.call_metadata(
            "ListDatasources",
            ms.ListDatasourcesRequest(namespace=namespace, page_size=_PAGE_SIZE, page_token=token),
            idempotent=True,
        )
        datasources.extend(Datasource(conn, proto) for proto in response.datasources)
        token = response.next_page_token
        if not token:
            return datasources

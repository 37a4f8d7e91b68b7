"""Which namespace each MetadataService call touches, and whether a token's grants reach it.

Requests that name a datasource or dataset by id are judged by the namespace it belongs to, looked
up in the store; an id that does not exist is let through, so the call answers NOT_FOUND as usual.
A method with no rule here is refused unless the token may write every namespace: new methods are
closed until someone says who may call them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from thresher.services.auth import Identity, PermissionDenied
from thresher.services.metadata.domain_errors import NotFound
from thresher.services.metadata.store import Store
from thresher.v1 import metadata_service_pb2 as pb

READ, WRITE = False, True


class MetadataAuthorizer:
    """Judges MetadataService requests against the caller's grants."""

    def __init__(self, store: Store) -> None:
        self._store = store
        by_datasource = self._datasource_namespace
        self._rules: dict[str, tuple[bool, Callable[[Any], str | None]]] = {
            "CreateNamespace": (WRITE, lambda r: r.name),
            "GetNamespace": (READ, lambda r: r.name),
            "CreateDatasource": (WRITE, lambda r: r.namespace),
            "GetOrCreateDatasource": (WRITE, lambda r: r.namespace),
            "GetDatasource": (READ, lambda r: by_datasource(r.id) if r.id else r.namespace),
            "ListDatasources": (READ, lambda r: r.namespace),
            "DeleteDatasource": (WRITE, lambda r: by_datasource(r.id)),
            "UpdateScanStatus": (WRITE, lambda r: by_datasource(r.datasource_id)),
            "DefineFields": (WRITE, lambda r: by_datasource(r.datasource_id)),
            "UpsertMetadata": (WRITE, lambda r: by_datasource(r.datasource_id)),
            "UpsertTable": (WRITE, self._upload_namespace),
            "CommitStagedUpload": (WRITE, lambda r: by_datasource(r.datasource_id)),
            "AbortStagedUpload": (WRITE, lambda r: by_datasource(r.datasource_id)),
            "DeleteMetadata": (WRITE, lambda r: by_datasource(r.datasource_id)),
            "DeleteDatapoints": (WRITE, lambda r: by_datasource(r.datasource_id)),
            "ExecuteQuery": (READ, lambda r: by_datasource(r.query.datasource_id)),
            "DescribeQuery": (READ, lambda r: by_datasource(r.query.datasource_id)),
            "ReadQuery": (READ, lambda r: by_datasource(r.query.datasource_id)),
            "CountValues": (READ, lambda r: by_datasource(r.query.datasource_id)),
            # SQL names its namespaces inside the statement: the servicer shows it only the readable ones.
            "ExecuteSql": (READ, lambda r: None),
            "DescribeSql": (READ, lambda r: None),
            "ListSqlTables": (READ, lambda r: r.namespace),
            "GetHistory": (READ, lambda r: by_datasource(r.datasource_id)),
            "ListChanges": (READ, lambda r: by_datasource(r.datasource_id)),
            "SaveDataset": (WRITE, lambda r: r.namespace),
            "GetDataset": (READ, lambda r: self._dataset_namespace(r.id) if r.id else r.namespace),
            "ListDatasets": (READ, lambda r: r.namespace),
            "DeleteDataset": (WRITE, lambda r: self._dataset_namespace(r.id)),
            "RegisterBagDataset": (WRITE, lambda r: r.namespace),
            "GetBagDataset": (READ, lambda r: r.namespace),
            "ListBagDatasets": (READ, lambda r: r.namespace),
            "CreateVectorIndex": (WRITE, lambda r: by_datasource(r.datasource_id)),
        }

    def _datasource_namespace(self, datasource_id: int) -> str | None:
        try:
            return self._store.get_datasource(datasource_id).namespace
        except NotFound:
            return None

    def _dataset_namespace(self, dataset_id: int) -> str | None:
        try:
            return self._store.get_dataset(dataset_id).namespace
        except NotFound:
            return None

    def _upload_namespace(self, request: pb.UpsertTableRequest) -> str | None:
        if request.WhichOneof("part") != "header":
            return None  # the servicer rejects a stream that does not start with its header
        return self._datasource_namespace(request.header.datasource_id)

    def check(self, method: str, request: Any, identity: Identity) -> None:
        if method == "ListNamespaces":
            return  # answered with the readable namespaces only (``filter``)
        rule = self._rules.get(method)
        if rule is None:
            if not identity.may_everywhere(write=True):
                raise PermissionDenied(f"{method} is open only to tokens that may write every namespace")
            return
        write, namespace_of = rule
        namespace = namespace_of(request)
        if namespace is None or namespace == "":
            return
        if not identity.may(namespace, write):
            raise PermissionDenied(
                f"{identity.subject!r} may not {'write' if write else 'read'} namespace {namespace!r}"
            )
        if method == "SaveDataset" and request.query.datasource_id:
            # The saved query must read a datasource the caller may read (the store also checks it is in this namespace).
            source = self._datasource_namespace(request.query.datasource_id)
            if source is not None and not identity.may(source):
                raise PermissionDenied(f"{identity.subject!r} may not read namespace {source!r}")

    def filter(self, method: str, response: Any, identity: Identity) -> Any:
        if method == "ListNamespaces":
            readable = [n for n in response.namespaces if identity.may(n.name)]
            del response.namespaces[:]
            response.namespaces.extend(readable)
        return response

"""The flight service's calls to the metadata service: query streams, descriptions, uploads, the catalog.

Record batches pass through as Arrow IPC messages read without copying; nothing becomes Python objects.
gRPC failures propagate as ``grpc.RpcError`` for the server to turn into Flight errors.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import grpc
import pyarrow as pa

from thresher.core import arrow_io
from thresher.services.auth.forwarded_headers import Metadata
from thresher.services.flight.readahead import read_ahead
from thresher.services.pagination import list_all
from thresher.v1 import common_pb2, metadata_service_pb2_grpc
from thresher.v1 import metadata_service_pb2 as mpb

log = logging.getLogger(__name__)

CALL_TIMEOUT = 30.0
# Messages read ahead of the Flight writer: a few batches of about TARGET_BATCH_BYTES each.
READ_AHEAD = 4
DATASOURCES, DATASETS, BAGS = "datasources", "datasets", "bags"


_SERVICE = mpb.DESCRIPTOR.services_by_name["MetadataService"].full_name
_EXECUTE_QUERY = f"/{_SERVICE}/ExecuteQuery"
# ExecuteSqlResponse has ExecuteQueryResponse's layout, so ``response_part`` reads both.
_EXECUTE_SQL = f"/{_SERVICE}/ExecuteSql"
# Wire tags of ExecuteQueryResponse's parts: field number << 3 | 2 (length-delimited).
_SCHEMA_TAG, _BATCH_TAG = 1 << 3 | 2, 2 << 3 | 2


class _HandOff:
    """Requests handed from the thread that reads an upload to the thread gRPC sends them from,
    holding at most ``capacity``; ``close`` (the call ended) releases both sides."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: collections.deque[mpb.UpsertTableRequest] = collections.deque()
        self._finished = self._closed = False
        self._changed = threading.Condition()

    def put(self, request: mpb.UpsertTableRequest) -> bool:
        """Waits for room; False when the call has ended and will take nothing more."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._items) < self._capacity or self._closed)
            if self._closed:
                return False
            self._items.append(request)
            self._changed.notify_all()
            return True

    def finish(self) -> None:
        """No more requests: the stream ends once gRPC has sent those handed over."""
        with self._changed:
            self._finished = True
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def __iter__(self) -> Iterator[mpb.UpsertTableRequest]:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._items or self._finished or self._closed)
                if not self._items or self._closed:
                    return
                request = self._items.popleft()
                self._changed.notify_all()
            yield request


class UnusableResult(Exception):
    """The metadata service answered with a stream the relay cannot use (no schema first)."""


# (part name, payload) of one ExecuteQueryResponse: the name is None when no part is set.
Part = tuple[str | None, memoryview | bytes]


class _PartCall(Iterator[Part], Protocol):
    """A unary-stream call of ExecuteQuery or ExecuteSql, read through ``response_part``."""

    def cancel(self) -> bool: ...


def response_part(raw: bytes) -> Part:
    """(part name, payload) of a serialized ExecuteQueryResponse, the payload a view into ``raw``.

    A response with one part set is that part's tag, a varint length and the bytes; reading that
    directly spares the two copies of an 8 MiB batch that parsing the message and reading the field
    would make. Anything else is parsed as a protobuf message.
    """
    if raw and raw[0] in (_SCHEMA_TAG, _BATCH_TAG):
        length, shift, position = 0, 0, 1
        while position < len(raw) and shift < 64:
            byte = raw[position]
            length |= (byte & 0x7F) << shift
            position += 1
            shift += 7
            if byte < 0x80:
                if position + length == len(raw):
                    return ("schema" if raw[0] == _SCHEMA_TAG else "record_batch"), memoryview(raw)[position:]
                break
    message = mpb.ExecuteQueryResponse.FromString(raw)
    part = message.WhichOneof("part")
    return part, getattr(message, part) if part else b""


class MetadataBackend:
    """Each call takes ``metadata``: the gRPC metadata of the client on whose behalf it is made."""

    def __init__(self, channel: grpc.Channel) -> None:
        # The generated gRPC module has no type information: responses are annotated where they are read.
        self._stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)  # type: ignore[no-untyped-call]
        self._execute_query = channel.unary_stream(
            _EXECUTE_QUERY,
            request_serializer=mpb.ExecuteQueryRequest.SerializeToString,
            response_deserializer=response_part,
        )
        self._execute_sql = channel.unary_stream(
            _EXECUTE_SQL,
            request_serializer=mpb.ExecuteSqlRequest.SerializeToString,
            response_deserializer=response_part,
        )

    def execute(self, query: common_pb2.Query, metadata: Metadata = ()) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The result's schema (read before returning, so a bad query fails here) and its batches."""
        return self._relay(self._execute_query(mpb.ExecuteQueryRequest(query=query), metadata=metadata))

    def execute_sql(
        self, request: mpb.ExecuteSqlRequest, metadata: Metadata = ()
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """A SQL statement's result schema and batches, as ``execute``."""
        return self._relay(self._execute_sql(request, metadata=metadata))

    def describe_sql(self, request: mpb.DescribeSqlRequest, metadata: Metadata = ()) -> pa.Schema:
        """A SQL statement's result schema, without running it."""
        response: mpb.DescribeSqlResponse = self._stub.DescribeSql(request, timeout=CALL_TIMEOUT, metadata=metadata)
        return arrow_io.read_schema(response.schema)

    def sql_tables(self, include_schema: bool, metadata: Metadata = ()) -> list[mpb.SqlTable]:
        """Every table SQL shows the caller."""
        request = mpb.ListSqlTablesRequest(include_schema=include_schema)
        response: mpb.ListSqlTablesResponse = self._stub.ListSqlTables(request, timeout=CALL_TIMEOUT, metadata=metadata)
        return list(response.tables)

    @staticmethod
    def _relay(call: _PartCall) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """Reads a schema-then-batches stream of the metadata service ahead of the Flight writer."""
        messages = read_ahead(call, READ_AHEAD, on_close=call.cancel)
        part, payload = next(messages, (None, b""))
        if part != "schema":
            messages.close()
            raise UnusableResult("the metadata service's query result did not start with a schema")
        schema = arrow_io.read_schema(payload)

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for part, payload in messages:
                    if part != "record_batch":
                        raise UnusableResult(f"the metadata service's query result held a {part} after the schema")
                    yield arrow_io.read_batch(payload, schema)
            finally:
                messages.close()  # when the client went away early this cancels the query call

        return schema, batches()

    def describe_with_ids(
        self, query: common_pb2.Query, metadata: Metadata = (), estimate: bool = False
    ) -> tuple[pa.Schema, int, int, int]:
        """The result's schema, row count, and smallest and largest datapoint id (0, 0 when unknown or empty);
        with ``estimate``, the store's cheap estimate of the count and bounds that hold the result's ids."""
        response: mpb.DescribeQueryResponse = self._stub.DescribeQuery(
            mpb.DescribeQueryRequest(query=query, estimate=estimate), timeout=CALL_TIMEOUT, metadata=metadata
        )
        return (
            arrow_io.read_schema(response.schema),
            response.total_rows,
            response.min_datapoint_id,
            response.max_datapoint_id,
        )

    def upsert(
        self,
        datasource_id: int,
        path_column: str,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch],
        metadata: Metadata = (),
        create_missing: bool = False,
        staging_session: str = "",
        block_index: int = 0,
    ) -> mpb.UpsertTableResponse:
        """Streams ``batches`` into one atomic UpsertTable call as they arrive.

        ``batches`` is read on the calling thread only, never on gRPC's sending thread: a DoPut's reader
        dies with its handler, which may return (the service refused the upload) while gRPC is still
        asking for the next request. If ``batches`` raises, the call is cancelled, so the metadata
        service commits nothing, and the error is raised here.
        """
        handoff = _HandOff(READ_AHEAD)
        call = self._stub.UpsertTable.future(iter(handoff), metadata=metadata)
        call.add_done_callback(lambda _call: handoff.close())
        try:
            for request in arrow_io.upsert_table_requests(
                datasource_id, path_column, schema, batches, create_missing, staging_session, block_index
            ):
                if not handoff.put(request):
                    break  # the call already ended (the service refused it): its status says why
            else:
                handoff.finish()
        except BaseException:
            call.cancel()  # without the end message the service writes nothing
            raise
        response: mpb.UpsertTableResponse = call.result()
        return response

    def datasource_query(self, namespace: str, name: str, metadata: Metadata = ()) -> common_pb2.Query:
        """The query of a whole datasource, found by name."""
        request = mpb.GetDatasourceRequest(namespace=namespace, name=name)
        response: mpb.GetDatasourceResponse = self._stub.GetDatasource(request, timeout=CALL_TIMEOUT, metadata=metadata)
        return common_pb2.Query(datasource_id=response.datasource.id)

    def dataset_query(self, namespace: str, name: str, metadata: Metadata = ()) -> common_pb2.Query:
        """A saved dataset's query, found by name."""
        response: mpb.GetDatasetResponse = self._stub.GetDataset(
            mpb.GetDatasetRequest(namespace=namespace, name=name), timeout=CALL_TIMEOUT, metadata=metadata
        )
        return response.dataset.query

    def catalog(
        self, namespace: str | None = None, metadata: Metadata = ()
    ) -> Iterator[tuple[tuple[str, str, str], common_pb2.Query | None]]:
        """((namespace, "datasources" | "datasets" | "bags", name), query) for everything in one or all
        namespaces; the query is None for a bag dataset."""
        if namespace:
            names = [namespace]
        else:
            names = [
                n.name for n in _pages(self._stub.ListNamespaces, mpb.ListNamespacesRequest(), "namespaces", metadata)
            ]
        for name in names:
            request = mpb.ListDatasourcesRequest(namespace=name)
            for datasource in _pages(self._stub.ListDatasources, request, DATASOURCES, metadata):
                yield (name, DATASOURCES, datasource.name), common_pb2.Query(datasource_id=datasource.id)
            request = mpb.ListDatasetsRequest(namespace=name)
            for dataset in _pages(self._stub.ListDatasets, request, DATASETS, metadata):
                yield (name, DATASETS, dataset.name), dataset.query
            request = mpb.ListBagDatasetsRequest(namespace=name)
            for bag in _pages(self._stub.ListBagDatasets, request, "bag_datasets", metadata):
                yield (name, BAGS, bag.name), None


def _pages(call: Callable[..., Any], request: Any, field: str, metadata: Metadata) -> Iterator[Any]:
    """Every item of a paginated List call, made on behalf of the client in ``metadata``."""
    return list_all(call, request, field, timeout=CALL_TIMEOUT, metadata=metadata)

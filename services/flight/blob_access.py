"""Who may read a blob: content addressing is not a capability.

A blob is bytes kept once by sha256, shared by every datasource whose field holds that hash. Knowing a
hash must not open the bytes, so a ``BlobTicket`` names the datasource it was read from, and the flight
service serves the blob only when, asked with the caller's own token,

1. the metadata service lets the caller read that datasource (its namespace rules apply, on every
   ticket: nothing is cached), and
2. the datasource holds the hash as the value of a blob field, or as the mask of a segmentation
   field, now or earlier in its history (a time-travel read may show a blob that a later write
   replaced).

A blob shared by two namespaces is so readable by the readers of either, and by nobody else; every
refusal is PERMISSION_DENIED and says the same whether or not the blob exists anywhere.
"""

from __future__ import annotations

import grpc
import pyarrow as pa
import pyarrow.compute as pc

from thresher.core import arrow_io
from thresher.core.storage.blobs import check_digest
from thresher.core.storage.storage_errors import InvalidStorageUriError
from thresher.services.auth.forwarded_headers import Metadata
from thresher.services.flight.flight_errors import invalid_argument, status_error
from thresher.v1 import common_pb2, flight_pb2, metadata_service_pb2_grpc
from thresher.v1 import metadata_service_pb2 as mpb

CALL_TIMEOUT = 30.0


class BlobAccess:
    """Checks blob tickets against the metadata service at ``channel``, as each caller."""

    def __init__(self, channel: grpc.Channel) -> None:
        # The generated gRPC module has no type information: responses are annotated where they are read.
        self._stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)  # type: ignore[no-untyped-call]

    def check(self, ticket: flight_pb2.BlobTicket, caller: Metadata) -> None:
        """Returns when the caller may read the ticket's blob; raises a Flight error otherwise.
        gRPC errors of the metadata service (the caller may not read the datasource) propagate."""
        try:
            digest = check_digest(ticket.sha256)
        except InvalidStorageUriError as error:
            raise invalid_argument(str(error)) from None
        if ticket.datasource_id <= 0:
            raise invalid_argument(
                f"the ticket for blob {digest} names no datasource: a blob is served to the "
                "readers of a datasource that holds it, so the ticket must name one"
            )
        found: mpb.GetDatasourceResponse = self._stub.GetDatasource(
            mpb.GetDatasourceRequest(id=ticket.datasource_id), timeout=CALL_TIMEOUT, metadata=caller
        )
        datasource = found.datasource
        fields = [field.name for field in datasource.fields if field.type == common_pb2.FIELD_TYPE_BLOB]
        # A segmentation's mask is a blob too; no filter reaches inside it, so only the log is read
        # (the log's rows include each datapoint's current values).
        masks = [
            field.name for field in datasource.fields if field.type == common_pb2.FIELD_TYPE_ANNOTATION_SEGMENTATION
        ]
        if fields and self._holds_now(datasource.id, fields, digest, caller):
            return
        if (fields or masks) and self._held_before(datasource.id, fields + masks, digest, caller):
            return
        raise status_error(
            grpc.StatusCode.PERMISSION_DENIED,
            f"datasource {datasource.namespace}/{datasource.name} holds no blob {digest}: "
            "a blob is served only through a datasource whose blob field holds it",
        )

    def _holds_now(self, datasource_id: int, fields: list[str], digest: str, caller: Metadata) -> bool:
        value = common_pb2.Value(string_value=digest)
        filters = [
            common_pb2.Filter(
                comparison=common_pb2.Comparison(field=name, op=common_pb2.COMPARISON_OPERATOR_EQ, value=value)
            )
            for name in fields
        ]
        query = common_pb2.Query(
            datasource_id=datasource_id,
            limit=1,
            filter=common_pb2.Filter(any_of=common_pb2.FilterList(filters=filters)),
        )
        response: mpb.DescribeQueryResponse = self._stub.DescribeQuery(
            mpb.DescribeQueryRequest(query=query), timeout=CALL_TIMEOUT, metadata=caller
        )
        return response.total_rows > 0

    def _held_before(self, datasource_id: int, fields: list[str], digest: str, caller: Metadata) -> bool:
        """Whether a logged write set a blob field (or a segmentation's mask) to ``digest``: the log
        streams and is left at the first hit."""
        call = self._stub.ListChanges(
            mpb.ListChangesRequest(datasource_id=datasource_id), timeout=CALL_TIMEOUT, metadata=caller
        )
        try:
            schema = None
            for message in call:
                part = message.WhichOneof("part")
                if part == "schema":
                    schema = arrow_io.read_schema(message.schema)
                    continue
                if part != "record_batch" or schema is None:
                    continue
                batch = arrow_io.read_batch(message.record_batch, schema)
                for name in fields:
                    index = batch.schema.get_field_index(name)
                    if index >= 0 and _contains(batch.column(index), digest):
                        return True
            return False
        finally:
            call.cancel()


def _contains(column: pa.Array, digest: str) -> bool:
    if pa.types.is_struct(column.type) and column.type.get_field_index("mask") >= 0:  # a segmentation
        column = pc.struct_field(column, "mask")
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return False
    return bool(pc.any(pc.equal(column, digest)).as_py())

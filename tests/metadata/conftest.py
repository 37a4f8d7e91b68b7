"""Helpers for talking to the metadata service with its generated stubs alone."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from thresher.core.arrow_io import read_batch, read_schema, upsert_table_requests
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as pb


class MetadataHelper:
    def __init__(self, stub, namespace: str) -> None:
        self.stub = stub
        self.namespace = namespace

    def datasource(self, name: str = "ds") -> common_pb2.Datasource:
        return self.stub.CreateDatasource(
            pb.CreateDatasourceRequest(namespace=self.namespace, name=name, source_uri="file:///nowhere")
        ).datasource

    def upload(self, datasource_id: int, table: pa.Table, path_column: str = "path") -> pb.UpsertTableResponse:
        return self.stub.UpsertTable(
            upsert_table_requests(datasource_id, path_column, table.schema, table.to_batches(), create_missing=True)
        )

    def query_table(self, query: common_pb2.Query) -> pa.Table:
        responses = iter(self.stub.ExecuteQuery(pb.ExecuteQueryRequest(query=query)))
        schema = read_schema(next(responses).schema)
        return pa.Table.from_batches([read_batch(r.record_batch, schema) for r in responses], schema)

    def query(self, datasource_id: int, filter: common_pb2.Filter | None = None, **kw) -> pd.DataFrame:
        query = common_pb2.Query(datasource_id=datasource_id, **kw)
        if filter is not None:
            query.filter.CopyFrom(filter)
        return self.query_table(query).to_pandas()


@pytest.fixture
def meta(metadata_stub, namespace) -> MetadataHelper:
    return MetadataHelper(metadata_stub, namespace)


def compare(field: str, op: str, value=None, other: str | None = None, values=None) -> common_pb2.Filter:
    from thresher.core.types import to_proto_value

    comparison = common_pb2.Comparison(field=field, op=getattr(common_pb2, f"COMPARISON_OPERATOR_{op.upper()}"))
    if other is not None:
        comparison.other_field = other
    elif values is not None:
        comparison.values.values.extend(to_proto_value(v) for v in values)
    elif value is not None:
        comparison.value.CopyFrom(to_proto_value(value))
    return common_pb2.Filter(comparison=comparison)

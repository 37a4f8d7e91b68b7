import datetime as dt
import hashlib
import os

import grpc
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from thresher.core.arrow_io import upsert_table_requests
from thresher.core.types import to_proto_value
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as pb


def _fields(stub, datasource_id):
    return {f.name: f.type for f in stub.GetDatasource(pb.GetDatasourceRequest(id=datasource_id)).datasource.fields}


def _upsert(stub, datasource_id, rows: dict[str, dict]):
    return stub.UpsertMetadata(
        pb.UpsertMetadataRequest(
            datasource_id=datasource_id,
            datapoints=[
                pb.DatapointValues(path=path, values={k: to_proto_value(v) for k, v in values.items()})
                for path, values in rows.items()
            ],
            create_missing=True,
        )
    )


def test_first_write_infers_every_type(meta, metadata_stub):
    source = meta.datasource()
    when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)
    _upsert(
        metadata_stub, source.id, {"a.png": {"i": 3, "f": 0.5, "b": True, "s": "cat", "t": when, "blob": b"\x00\x01"}}
    )
    assert _fields(metadata_stub, source.id) == {
        "i": common_pb2.FIELD_TYPE_INT,
        "f": common_pb2.FIELD_TYPE_FLOAT,
        "b": common_pb2.FIELD_TYPE_BOOL,
        "s": common_pb2.FIELD_TYPE_STRING,
        "t": common_pb2.FIELD_TYPE_DATETIME,
        "blob": common_pb2.FIELD_TYPE_BLOB,
    }
    row = meta.query(source.id).iloc[0]
    assert (row["i"], row["f"], row["b"], row["s"]) == (3, 0.5, True, "cat")
    assert row["t"] == pd.Timestamp(when)
    assert row["blob"] == hashlib.sha256(b"\x00\x01").hexdigest()


def test_fields_one_small_write_creates_come_in_a_fixed_order(meta, metadata_stub):
    # A protobuf map has no order of its own (it changes from process to process): fields come in
    # order of first appearance, row by row, and by name within a row, on every engine and replica.
    source = meta.datasource()
    names = ["zeta", "alpha", "mid", "b", "a", "q", "kappa", "c"]
    _upsert(metadata_stub, source.id, {"one.png": {"y": 1, "x": 2}, "two.png": {name: 1 for name in names}})
    assert list(_fields(metadata_stub, source.id)) == ["x", "y", *sorted(set(names) - {"x", "y"})]


@pytest.mark.parametrize(
    "first, second, expected, given",
    [
        (1, "one", "int", "string"),
        (1, True, "int", "bool"),
        (True, 1, "bool", "int"),
        (1, 1.5, "int", "float"),
        ("x", 2.0, "string", "float"),
        (dt.datetime(2020, 1, 1), "2020", "datetime", "string"),
        (b"raw", "text", "blob", "string"),
    ],
)
def test_wrong_type_is_rejected_naming_field_expected_and_given(meta, metadata_stub, first, second, expected, given):
    source = meta.datasource()
    _upsert(metadata_stub, source.id, {"a": {"field": first}})
    with pytest.raises(grpc.RpcError) as excinfo:
        _upsert(metadata_stub, source.id, {"b": {"field": second}})
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    message = excinfo.value.details()
    assert "'field'" in message and f"has type {expected}" in message and given in message


def test_integral_float_fits_int_field_and_int_fits_float_field(meta, metadata_stub):
    source = meta.datasource()
    _upsert(metadata_stub, source.id, {"a": {"i": 1, "f": 1.5}})
    _upsert(metadata_stub, source.id, {"b": {"i": 4.0, "f": 2}})
    frame = meta.query(source.id).set_index("path")
    assert frame.loc["b", "i"] == 4 and frame.loc["b", "f"] == 2.0
    assert _fields(metadata_stub, source.id)["i"] == common_pb2.FIELD_TYPE_INT


def test_a_request_with_one_bad_value_writes_nothing(meta, metadata_stub):
    source = meta.datasource()
    _upsert(metadata_stub, source.id, {"a": {"n": 1}})
    table = pa.table({"path": ["a", "new1", "new2"], "n": [5.0, 6.0, 6.5], "brand_new": ["x", "y", "z"]})
    with pytest.raises(grpc.RpcError) as excinfo:
        meta.upload(source.id, table)
    assert "6.5" in excinfo.value.details()
    frame = meta.query(source.id)
    assert frame["path"].tolist() == ["a"] and frame["n"].tolist() == [1]
    assert set(_fields(metadata_stub, source.id)) == {"n"}


def test_missing_values_leave_fields_untouched(meta, metadata_stub):
    source = meta.datasource()
    meta.upload(source.id, pa.table({"path": ["a", "b"], "x": [1.0, 2.0], "s": ["p", "q"]}))
    meta.upload(source.id, pa.table({"path": ["a", "b"], "x": [np.nan, 9.0], "s": [None, "r"]}))
    frame = meta.query(source.id).set_index("path")
    assert frame.loc["a", "x"] == 1.0 and frame.loc["a", "s"] == "p"
    assert frame.loc["b", "x"] == 9.0 and frame.loc["b", "s"] == "r"


def test_naive_datetimes_are_utc(meta, metadata_stub):
    source = meta.datasource()
    frame = pd.DataFrame({"path": ["a"], "t": [pd.Timestamp("2024-01-02 03:04:05")]})
    meta.upload(source.id, pa.Table.from_pandas(frame, preserve_index=False))
    assert meta.query(source.id)["t"][0] == pd.Timestamp("2024-01-02 03:04:05", tz="UTC")


def test_blob_is_stored_once_by_hash(meta, metadata_server):
    source = meta.datasource()
    meta.upload(source.id, pa.table({"path": ["a", "b"], "blob": pa.array([b"same", b"same"], pa.binary())}))
    digest = hashlib.sha256(b"same").hexdigest()
    assert meta.query(source.id)["blob"].tolist() == [digest, digest]
    blob_path = metadata_server[1]._blobs.path(digest)
    assert open(blob_path, "rb").read() == b"same"


@pytest.mark.parametrize(
    "table, message",
    [
        (pa.table({"path": ["a", "a"], "x": [1, 2]}), "appears more than once"),
        (pa.table({"path": ["a", None], "x": [1, 2]}), "missing value"),
        (pa.table({"path": ["a", ""], "x": [1, 2]}), "empty path"),
        (pa.table({"path": ["a", "b\x00c"], "x": [1, 2]}).slice(1), "NUL character"),
        (pa.table({"path": [1, 2], "x": [1, 2]}), "must hold strings"),
        (pa.table({"path": ["a"], "datapoint_id": [1]}), "reserved"),
        (pa.table({"other": ["a"], "x": [1]}), "path column 'path'"),
    ],
)
def test_malformed_uploads_are_invalid_argument(meta, table, message):
    source = meta.datasource()
    with pytest.raises(grpc.RpcError) as excinfo:
        meta.upload(source.id, table)
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in excinfo.value.details()
    assert meta.query(source.id).empty


def test_upload_stream_out_of_order_is_rejected(meta, metadata_stub):
    source = meta.datasource()
    batch = pa.record_batch({"path": ["a"]})
    requests = [
        pb.UpsertTableRequest(header=pb.UpsertTableHeader(datasource_id=source.id)),
        pb.UpsertTableRequest(record_batch=batch.serialize().to_pybytes()),
    ]
    with pytest.raises(grpc.RpcError) as excinfo:
        metadata_stub.UpsertTable(iter(requests))
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "before the schema" in excinfo.value.details()
    garbage = [
        pb.UpsertTableRequest(header=pb.UpsertTableHeader(datasource_id=source.id)),
        pb.UpsertTableRequest(schema=b"not arrow"),
    ]
    with pytest.raises(grpc.RpcError) as excinfo:
        metadata_stub.UpsertTable(iter(garbage))
    assert (
        excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "malformed Arrow schema" in excinfo.value.details()
    )


@pytest.mark.parametrize(
    "ending, message",
    [
        (None, "stopped before its end message"),
        (pb.UpsertTableEnd(record_batches=2, rows=1), "announces 2 batches of 1 rows"),
    ],
)
def test_an_upload_without_a_matching_end_writes_nothing(meta, metadata_stub, ending, message):
    source = meta.datasource()
    table = pa.table({"path": ["a"], "x": [1]})
    requests = list(upsert_table_requests(source.id, "path", table.schema, table.to_batches(), create_missing=True))[
        :-1
    ]
    if ending is not None:
        requests.append(pb.UpsertTableRequest(end=ending))
    with pytest.raises(grpc.RpcError) as excinfo:
        metadata_stub.UpsertTable(iter(requests))
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in excinfo.value.details()
    assert meta.query(source.id).empty


def test_write_to_unknown_datasource_is_not_found(meta):
    with pytest.raises(grpc.RpcError) as excinfo:
        meta.upload(424242, pa.table({"path": ["a"], "x": [1]}))
    assert excinfo.value.code() == grpc.StatusCode.NOT_FOUND and "424242" in excinfo.value.details()


def test_delete_metadata_and_datapoints(meta, metadata_stub):
    source = meta.datasource()
    meta.upload(source.id, pa.table({"path": ["a", "b", "c"], "x": [1, 2, 3], "y": ["p", "q", None]}))
    ids_before = dict(zip(*meta.query(source.id)[["path", "datapoint_id"]].T.values))
    deleted = metadata_stub.DeleteMetadata(
        pb.DeleteMetadataRequest(datasource_id=source.id, paths=["a", "c"], fields=["y"])
    ).values_deleted
    assert deleted == 1
    frame = meta.query(source.id).set_index("path")
    assert pd.isna(frame.loc["a", "y"]) and frame.loc["a", "x"] == 1 and frame.loc["b", "y"] == "q"
    assert (
        metadata_stub.DeleteDatapoints(
            pb.DeleteDatapointsRequest(datasource_id=source.id, paths=["b"])
        ).datapoints_deleted
        == 1
    )
    assert meta.query(source.id)["path"].tolist() == ["a", "c"]
    # A path that comes back keeps its id and starts with no values.
    response = meta.upload(source.id, pa.table({"path": ["b"], "x": [7]}))
    assert response.datapoints_created == 1
    frame = meta.query(source.id).set_index("path")
    assert frame.loc["b", "datapoint_id"] == ids_before["b"] and pd.isna(frame.loc["b", "y"])


def test_deletes_naming_unknown_things_delete_nothing(meta, metadata_stub):
    source = meta.datasource()
    meta.upload(source.id, pa.table({"path": ["a"], "x": [1]}))
    cases = [
        (
            metadata_stub.DeleteDatapoints,
            pb.DeleteDatapointsRequest(datasource_id=source.id, paths=["a", "ghost"]),
            "'ghost'",
        ),
        (
            metadata_stub.DeleteMetadata,
            pb.DeleteMetadataRequest(datasource_id=source.id, paths=["a", "ghost"]),
            "'ghost'",
        ),
        (
            metadata_stub.DeleteMetadata,
            pb.DeleteMetadataRequest(datasource_id=source.id, paths=["a"], fields=["nope"]),
            "'nope'",
        ),
    ]
    for call, request, name in cases:
        with pytest.raises(grpc.RpcError) as excinfo:
            call(request)
        assert excinfo.value.code() == grpc.StatusCode.NOT_FOUND and name in excinfo.value.details()
    assert meta.query(source.id)[["path", "x"]].values.tolist() == [["a", 1]]


def test_define_fields_fixes_types_and_tags(meta, metadata_stub):
    source = meta.datasource()
    fields = [common_pb2.Field(name="label", type=common_pb2.FIELD_TYPE_STRING, tags=["annotation"])]
    defined = metadata_stub.DefineFields(pb.DefineFieldsRequest(datasource_id=source.id, fields=fields)).fields
    assert defined[0].name == "label" and list(defined[0].tags) == ["annotation"]
    with pytest.raises(grpc.RpcError) as excinfo:
        _upsert(metadata_stub, source.id, {"a": {"label": 3}})
    assert "has type string" in excinfo.value.details()
    with pytest.raises(grpc.RpcError) as excinfo:
        metadata_stub.DefineFields(
            pb.DefineFieldsRequest(
                datasource_id=source.id, fields=[common_pb2.Field(name="label", type=common_pb2.FIELD_TYPE_INT)]
            )
        )
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_writes_survive_a_store_reopen(tmp_path):
    from thresher.services.metadata.server import open_store
    from thresher.v1 import common_pb2 as c

    store = open_store(str(tmp_path))
    source = store.create_datasource("a/b", "d", "file:///x", "")
    store.upsert(source.id, pa.table({"path": ["a", "b"], "x": [1, 2]}), "path", "tester", create_missing=True)
    store.close()
    reopened = open_store(str(tmp_path))
    schema, batches = reopened.query(c.Query(datasource_id=source.id))
    assert pa.Table.from_batches(list(batches), schema)["x"].to_pylist() == [1, 2]
    assert os.path.exists(tmp_path / "metadata.duckdb")
    reopened.close()

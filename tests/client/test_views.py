"""Datasource views against fake services: immutability, schema checks, what each call sends."""

import datetime
import warnings

import pyarrow as pa
import pytest

from thresher.core.errors import (
    FieldTypeMismatchError,
    InvalidArgumentError,
    NotFoundError,
    QueryError,
    ScanFailedError,
    ScanInProgressWarning,
    ServiceUnavailableError,
    UnknownFieldError,
)
from thresher.core.types import SCAN_STATE_METADATA_KEY, FieldType
from thresher.v1 import common_pb2

from .fakes import datasource_proto


def test_filters_accumulate_and_views_are_immutable(ds):
    small = ds[ds["size"] < 10]
    small_cats = small[ds["label"] == "cat"]  # a column belongs to the datasource, not to a view
    assert not ds.query_proto().HasField("filter")
    assert small.query_proto().filter.WhichOneof("node") == "comparison"
    tree = small_cats.query_proto().filter
    assert [f.comparison.field for f in tree.all_of.filters] == ["size", "label"]
    assert small_cats[small_cats["flag"] == True].query_proto().filter.all_of.filters[2].comparison.field == "flag"  # noqa: E712


def test_select_order_limit_as_of_build_new_views(ds):
    view = ds.select("label", ds["size"], "path").order_by("label", ds["size"].desc()).limit(5)
    query = view.query_proto()
    assert [s.field for s in query.select] == ["label", "size"]
    assert [(o.field, o.descending) for o in query.order_by] == [("label", False), ("size", True)]
    assert query.limit == 5
    assert not ds.query_proto().select and not ds.query_proto().HasField("limit")
    assert ds.as_of(datetime.datetime(2024, 1, 1)).query_proto().HasField("as_of")


def test_builtin_columns_filter_and_order(ds):
    query = ds[ds["path"].startswith("img/")].order_by("datapoint_id").query_proto()
    assert query.filter.comparison.field == "path" and query.order_by[0].field == "datapoint_id"


def test_unknown_field_names_it_and_lists_known_fields(ds, fakes):
    with pytest.raises(
        UnknownFieldError, match=r"no field 'nope'; its fields are: flag, label, score, size, taken, thumb"
    ):
        ds["nope"]
    for misuse in (lambda: ds.select("nope"), lambda: ds.order_by("nope"), lambda: ds.delete_metadata("a", "nope")):
        with pytest.raises(UnknownFieldError, match="nope"):
            misuse()


def test_unknown_field_refreshes_the_schema_once(ds, fakes):
    fakes.metadata.datasource.fields.append(common_pb2.Field(name="late", type=FieldType.INT.proto))
    before = len(fakes.metadata.requests("GetDatasource"))
    assert ds["late"].type is FieldType.INT
    assert len(fakes.metadata.requests("GetDatasource")) == before + 1
    ds["late"]  # now cached
    assert len(fakes.metadata.requests("GetDatasource")) == before + 1


def test_getitem_misuse(ds):
    with pytest.raises(QueryError, match="is a column, not a filter"):
        ds[ds["flag"]]
    with pytest.raises(TypeError):
        ds[0]
    with pytest.raises(TypeError, match="not a sequence"):
        list(ds)
    with pytest.raises(QueryError, match="non-negative"):
        ds.limit(-1)
    with pytest.raises(QueryError, match="datetime"):
        ds.as_of("yesterday")


def test_filter_from_another_datasource_is_refused(ds, fakes):
    from thresher.datasource import Datasource

    other = Datasource(fakes.connection, datasource_proto({"size": FieldType.INT}, id=99))
    with pytest.raises(QueryError, match="datasource 99"):
        ds[other["size"] > 1]


def test_all_sends_the_query_through_flight_and_warns_while_scanning(ds, fakes):
    table = pa.table({"path": ["a"], "datapoint_id": [1], "size": [3]})
    fakes.flight.result = table.replace_schema_metadata({SCAN_STATE_METADATA_KEY: b"scanning"})
    with pytest.warns(ScanInProgressWarning, match="still being scanned") as caught:
        result = ds[ds["size"] > 1].all()
    assert caught[0].filename == __file__  # the warning points at the caller's line
    assert result["a"]["size"] == 3
    sent = fakes.flight.tickets[-1].query.query
    assert sent.datasource_id == 7 and sent.filter.comparison.field == "size"
    with pytest.warns(ScanInProgressWarning) as caught:
        ds.head()
    assert caught[0].filename == __file__
    fakes.flight.result = table.replace_schema_metadata({SCAN_STATE_METADATA_KEY: b"ready"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(ds.head(1)) == 1
    assert fakes.flight.tickets[-1].query.query.limit == 1


def test_head_never_raises_an_existing_limit(ds, fakes):
    ds.limit(3).head(10)
    assert fakes.flight.tickets[-1].query.query.limit == 3


def test_row_counts_and_path_lists_are_checked_before_any_call(ds, fakes):
    # A limit past a signed 64-bit int used to fail in protobuf ("Value out of range"), and a
    # get_datapoints argument that is no list in iteration, neither naming what was wrong.
    with pytest.raises(QueryError, match=r"limit takes at most .* rows \(2\*\*63 - 1\), got 9,223,372,036,854,775,808"):
        ds.limit(2**63)
    with pytest.raises(QueryError, match="head takes a non-negative int, got '3'"):
        ds.head("3")
    with pytest.raises(QueryError, match="head takes at most"):
        ds.head(2**64)
    with pytest.raises(QueryError, match="get_datapoints takes a list of paths, got NoneType"):
        ds.get_datapoints(None)
    assert ds.limit(2**63 - 1).query_proto().limit == 2**63 - 1
    assert not fakes.flight.tickets and not fakes.metadata.requests("ReadQuery")


def test_count_uses_describe_query_and_respects_limit(ds, fakes):
    fakes.metadata.total_rows = 40
    assert ds[ds["size"] > 1].count() == 40
    assert fakes.metadata.requests("DescribeQuery")[-1].query.filter.comparison.field == "size"
    assert ds.limit(10).count() == 10


def test_get_datapoint_filters_on_path(ds, fakes):
    fakes.flight.result = pa.table({"path": ["a/b.png"], "datapoint_id": [4], "size": [1]})
    assert ds.get_datapoint("a/b.png").datapoint_id == 4
    query = fakes.flight.tickets[-1].query.query
    assert query.filter.comparison.field == "path" and query.filter.comparison.value.string_value == "a/b.png"
    fakes.flight.result = fakes.flight.result.slice(0, 0)
    with pytest.raises(NotFoundError, match="a/c.png"):
        ds.get_datapoint("a/c.png")


def test_metadata_context_sends_one_request_on_exit(ds, fakes):
    with ds.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata("a.png", {"size": 3, "score": 1})  # int widened for a float field
        ctx.update_metadata(["a.png", "b.png"], {"label": "cat", "size": 4.0, "new": None})
        ctx.update_metadata("a.png", {"label": None})  # "no value given": keeps "cat"
        assert fakes.metadata.requests("UpsertMetadata") == []
    [request] = fakes.metadata.requests("UpsertMetadata")
    values = {dp.path: dict(dp.values) for dp in request.datapoints}
    assert values["a.png"] == {
        "size": common_pb2.Value(int_value=4),
        "score": common_pb2.Value(float_value=1.0),
        "label": common_pb2.Value(string_value="cat"),
    }
    assert values["b.png"] == {"label": common_pb2.Value(string_value="cat"), "size": common_pb2.Value(int_value=4)}
    with pytest.raises(InvalidArgumentError, match="ended"):
        ctx.update_metadata("c.png", {"size": 1})


def test_metadata_context_sends_nothing_when_the_block_raises(ds, fakes):
    with pytest.raises(RuntimeError):
        with ds.metadata_context(create_missing=True) as ctx:
            ctx.update_metadata("a.png", {"size": 1})
            raise RuntimeError("boom")
    assert fakes.metadata.requests("UpsertMetadata") == []


def test_metadata_context_checks_types_as_values_are_given(ds, fakes):
    with pytest.raises(FieldTypeMismatchError, match="field 'size' has type int; got float value 1.5"):
        with ds.metadata_context(create_missing=True) as ctx:
            ctx.update_metadata("a.png", {"size": 1.5})
    with pytest.raises(FieldTypeMismatchError, match="field 'flag' has type bool; got int"):
        with ds.metadata_context(create_missing=True) as ctx:
            ctx.update_metadata("a.png", {"flag": 1})
    with pytest.raises(FieldTypeMismatchError, match="field 'fresh' has type string; got int"):
        with ds.metadata_context(create_missing=True) as ctx:  # the first write of a new field fixes its type
            ctx.update_metadata("a.png", {"fresh": "x"})
            ctx.update_metadata("b.png", {"fresh": 2})
    with pytest.raises(InvalidArgumentError, match="reserved"):
        with ds.metadata_context(create_missing=True) as ctx:
            ctx.update_metadata("a.png", {"path": "x"})
    assert fakes.metadata.requests("UpsertMetadata") == []


def test_delete_calls_take_paths_datapoints_and_results(ds, fakes):
    fakes.flight.result = pa.table({"path": ["x", "y"], "datapoint_id": [1, 2]})
    result = ds.all()
    assert ds.delete_metadata(result, ["size", "label"]) == 2
    assert list(fakes.metadata.requests("DeleteMetadata")[-1].paths) == ["x", "y"]
    assert list(fakes.metadata.requests("DeleteMetadata")[-1].fields) == ["size", "label"]
    ds.delete_metadata("x")
    assert list(fakes.metadata.requests("DeleteMetadata")[-1].fields) == []
    assert ds.delete_datapoints([result["y"], "z"]) == 2
    assert list(fakes.metadata.requests("DeleteDatapoints")[-1].paths) == ["y", "z"]
    with pytest.raises(TypeError, match="Datapoint"):
        ds.delete_datapoints([1])


def test_upload_sends_a_normalised_table_through_do_put(ds, fakes):
    import pandas as pd

    from thresher.v1 import metadata_service_pb2 as ms

    fakes.flight.put_result = ms.UpsertTableResponse(datapoints_written=2, datapoints_created=1).SerializeToString()
    frame = pd.DataFrame({"file": ["a", "b"], "size": [1.0, None], "extra": ["x", "y"]})
    response = ds.upload_metadata_from_dataframe(frame, path_column="file", create_missing=True)
    assert (response.datapoints_written, response.datapoints_created) == (2, 1)
    command, table = fakes.flight.uploads[-1]
    assert (command.upsert.datasource_id, command.upsert.path_column) == (7, "file")
    assert table.schema.field("size").type == pa.int64() and table.column("size").to_pylist() == [1, None]
    assert ds.upload_metadata_from_dataframe(frame.iloc[:0], create_missing=True) is None


def scan_status(state, **fields) -> common_pb2.ScanStatus:
    return common_pb2.ScanStatus(state=state, **fields)


def test_wait_until_ready_polls_the_scanner_until_ready(ds, fakes):
    fakes.scanner.statuses = [
        scan_status(common_pb2.SCAN_STATE_PENDING),
        scan_status(common_pb2.SCAN_STATE_SCANNING, files_seen=3, files_per_second=10.0),
        scan_status(common_pb2.SCAN_STATE_READY, files_seen=5),
    ]
    assert ds.wait_until_ready(progress=False) is ds
    assert len(fakes.scanner.requests("GetScanStatus")) == 3
    assert ds.scan_status.files_seen == 5


def test_wait_until_ready_raises_on_failure_and_timeout(ds, fakes):
    fakes.scanner.statuses = [scan_status(common_pb2.SCAN_STATE_FAILED, failure_reason="permission denied: /data")]
    with pytest.raises(ScanFailedError, match="alice/repo/images failed: permission denied: /data"):
        ds.wait_until_ready(progress=False)
    fakes.scanner.statuses = [scan_status(common_pb2.SCAN_STATE_SCANNING, files_seen=2)]
    with pytest.raises(TimeoutError, match="still scanning.*2 files"):
        ds.wait_until_ready(timeout=0, progress=False)


def test_scan_status_falls_back_to_the_datasource_record_without_a_scanner(fakes):
    from thresher.connection import Connection
    from thresher.datasource import Datasource

    dead = Connection(
        fakes.connection.metadata_address, fakes.connection.flight_address, "127.0.0.1:1", retry_timeout=0
    )
    ds = Datasource(dead, datasource_proto({}))
    assert ds.scan_status.state == "ready"
    assert fakes.metadata.requests("GetDatasource")
    with pytest.raises(ServiceUnavailableError, match="127.0.0.1:1"):
        ds.rescan()

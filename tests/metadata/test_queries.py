import datetime as dt

import grpc
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as pb

from .conftest import compare

UTC = dt.UTC
ROWS = pd.DataFrame(
    {
        "path": ["img/a.png", "img/b.jpg", "txt/c.txt", "img/d.png", "e.bin", "img/f.png"],
        "n": pd.array([1, 5, None, 7, 5, -3], dtype="Int64"),
        "m": pd.array([2, 5, 4, None, 1, -3], dtype="Int64"),
        "x": [0.5, np.nan, 2.5, 3.0, -1.0, 5.0],
        "flag": pd.array([True, False, None, True, False, True], dtype="boolean"),
        "label": pd.array(["cat", "dog", "catalog", None, "hotdog", "Cat"], dtype="string"),
        "t": pd.to_datetime(["2024-01-01", "2024-06-01", None, "2023-01-01", "2025-01-01", "2024-06-01"], utc=True),
    }
)


@pytest.fixture
def loaded(meta):
    source = meta.datasource()
    meta.upload(source.id, pa.Table.from_pandas(ROWS, preserve_index=False))
    return meta, source.id


def _paths(meta, datasource_id, filter_):
    return sorted(meta.query(datasource_id, filter_)["path"])


def _expected(mask: pd.Series) -> list[str]:
    return sorted(ROWS.loc[mask.fillna(False).astype(bool), "path"])


T0 = dt.datetime(2024, 6, 1, tzinfo=UTC)
CASES = [
    (compare("n", "eq", 5), ROWS.n == 5),
    (compare("n", "ne", 5), ROWS.n.notna() & (ROWS.n != 5)),  # missing satisfies no comparison
    (compare("n", "lt", 5), ROWS.n < 5),
    (compare("n", "le", 5), ROWS.n <= 5),
    (compare("n", "gt", 5), ROWS.n > 5),
    (compare("n", "ge", 5), ROWS.n >= 5),
    (compare("n", "gt", 4.5), ROWS.n > 4.5),
    (compare("x", "lt", 3), ROWS.x < 3),
    (compare("x", "ne", 3.0), ROWS.x.notna() & (ROWS.x != 3.0)),
    (compare("flag", "eq", True), ROWS.flag == True),  # noqa: E712
    (compare("flag", "ne", True), ROWS.flag == False),  # noqa: E712
    (compare("label", "eq", "cat"), ROWS.label == "cat"),
    (compare("label", "lt", "d"), ROWS.label < "d"),
    (compare("label", "contains", "dog"), ROWS.label.str.contains("dog")),
    (compare("label", "startswith", "cat"), ROWS.label.str.startswith("cat")),
    (compare("label", "endswith", "og"), ROWS.label.str.endswith("og")),
    (compare("path", "startswith", "img/"), ROWS.path.str.startswith("img/")),
    (compare("t", "ge", T0), ROWS.t >= pd.Timestamp(T0)),
    (compare("t", "eq", T0), ROWS.t == pd.Timestamp(T0)),
    (compare("n", "is_null"), ROWS.n.isna()),
    (compare("label", "is_not_null"), ROWS.label.notna()),
    (compare("n", "isin", values=[1, 7, 100]), ROWS.n.isin([1, 7, 100])),
    (compare("n", "isin", values=[1.0, 7.5]), ROWS.n.isin([1])),
    (compare("label", "isin", values=["cat", "Cat"]), ROWS.label.isin(["cat", "Cat"])),
    (compare("path", "isin", values=list(ROWS.path[:3]) + ["none"]), ROWS.path.isin(list(ROWS.path[:3]))),
    (
        common_pb2.Filter(negate=compare("path", "isin", values=list(ROWS.path[:3]))),
        ~ROWS.path.isin(list(ROWS.path[:3])),
    ),
    (compare("n", "isin", values=[]), ROWS.n != ROWS.n),
    (compare("n", "lt", other="m"), ROWS.n < ROWS.m),
    (compare("n", "eq", other="m"), ROWS.n == ROWS.m),
    (compare("x", "gt", other="n"), ROWS.x > ROWS.n),
]


@pytest.mark.parametrize("filter_, mask", CASES, ids=[str(i) for i in range(len(CASES))])
def test_every_operator_matches_pandas(loaded, filter_, mask):
    meta, datasource_id = loaded
    assert _paths(meta, datasource_id, filter_) == _expected(mask)


def _all(*filters):
    return common_pb2.Filter(all_of=common_pb2.FilterList(filters=list(filters)))


def _any(*filters):
    return common_pb2.Filter(any_of=common_pb2.FilterList(filters=list(filters)))


def _not(filter_):
    return common_pb2.Filter(negate=filter_)


def _t(mask):  # a comparison on a missing value is false
    return mask.fillna(False).astype(bool)


BOOLEAN_CASES = [
    (_not(compare("n", "gt", 4)), ~_t(ROWS.n > 4)),
    (
        _all(compare("n", "gt", 0), compare("label", "contains", "at")),
        _t(ROWS.n > 0) & _t(ROWS.label.str.contains("at")),
    ),
    (_any(compare("n", "eq", 7), compare("x", "lt", 0)), _t(ROWS.n == 7) | _t(ROWS.x < 0)),
    (_not(_all(compare("n", "gt", 0), compare("x", "gt", 1))), ~(_t(ROWS.n > 0) & _t(ROWS.x > 1))),
    (_not(_any(compare("n", "eq", 5), compare("label", "eq", "cat"))), ~(_t(ROWS.n == 5) | _t(ROWS.label == "cat"))),
    (_not(_not(compare("n", "ne", 5))), _t(ROWS.n.notna() & (ROWS.n != 5))),
    (
        _all(_not(compare("flag", "eq", True)), _any(compare("n", "is_null"), compare("n", "ge", 5))),
        ~_t(ROWS.flag == True) & (ROWS.n.isna() | _t(ROWS.n >= 5)),
    ),  # noqa: E712
]


@pytest.mark.parametrize("filter_, mask", BOOLEAN_CASES, ids=[str(i) for i in range(len(BOOLEAN_CASES))])
def test_and_or_not_use_two_valued_logic(loaded, filter_, mask):
    meta, datasource_id = loaded
    assert _paths(meta, datasource_id, filter_) == _expected(mask)


@pytest.mark.parametrize(
    "filter_, code, words",
    [
        (compare("ghost", "eq", 1), grpc.StatusCode.NOT_FOUND, "'ghost'"),
        (compare("n", "lt", other="ghost"), grpc.StatusCode.NOT_FOUND, "'ghost'"),
        (compare("n", "eq", "five"), grpc.StatusCode.INVALID_ARGUMENT, "field 'n' has type int; got string"),
        (compare("flag", "eq", 1), grpc.StatusCode.INVALID_ARGUMENT, "field 'flag' has type bool; got int"),
        (compare("label", "gt", 3), grpc.StatusCode.INVALID_ARGUMENT, "field 'label' has type string; got int"),
        (compare("n", "contains", "5"), grpc.StatusCode.INVALID_ARGUMENT, "needs a string field"),
        (compare("flag", "lt", True), grpc.StatusCode.INVALID_ARGUMENT, "cannot order"),
        (compare("label", "lt", other="n"), grpc.StatusCode.INVALID_ARGUMENT, "cannot compare field 'label'"),
        (compare("n", "eq"), grpc.StatusCode.INVALID_ARGUMENT, "needs a value"),
        (
            common_pb2.Filter(
                comparison=common_pb2.Comparison(
                    field="n", op=common_pb2.COMPARISON_OPERATOR_EQ, value=common_pb2.Value()
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "empty value",
        ),
        (compare("n", "isin", values=[1, "a"]), grpc.StatusCode.INVALID_ARGUMENT, "got string"),
        # A text field's list of strings is checked on a shorter path, a mixed one on the general one.
        (compare("label", "isin", values=["cat", 1]), grpc.StatusCode.INVALID_ARGUMENT, "got int"),
        (compare("label", "isin", values=["cat", "a\x00b"]), grpc.StatusCode.INVALID_ARGUMENT, "NUL"),
        (compare("path", "isin", values=["a\x00b"]), grpc.StatusCode.INVALID_ARGUMENT, "NUL"),
        (common_pb2.Filter(all_of=common_pb2.FilterList()), grpc.StatusCode.INVALID_ARGUMENT, "empty all_of"),
        (common_pb2.Filter(), grpc.StatusCode.INVALID_ARGUMENT, "none of comparison"),
    ],
)
def test_malformed_filters_name_the_problem(loaded, filter_, code, words):
    meta, datasource_id = loaded
    with pytest.raises(grpc.RpcError) as excinfo:
        meta.query(datasource_id, filter_)
    assert excinfo.value.code() == code and words in excinfo.value.details()


def test_deep_nesting_is_rejected_not_crashing(loaded):
    meta, datasource_id = loaded
    filter_ = compare("n", "eq", 1)
    for _ in range(70):
        filter_ = _not(filter_)
    with pytest.raises(grpc.RpcError) as excinfo:
        meta.query(datasource_id, filter_)
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "nested deeper" in excinfo.value.details()


def test_select_order_and_limit(loaded):
    meta, datasource_id = loaded
    frame = meta.query(
        datasource_id,
        select=[common_pb2.SelectItem(field="n"), common_pb2.SelectItem(field="label", alias="name")],
        order_by=[common_pb2.OrderBy(field="n", descending=True)],
        limit=4,
    )
    assert list(frame.columns) == ["path", "datapoint_id", "n", "name"]
    assert frame["n"].tolist()[:3] == [7, 5, 5] and len(frame) == 4
    ascending = meta.query(datasource_id, order_by=[common_pb2.OrderBy(field="x")])
    assert ascending["x"].tolist()[:-1] == sorted(ROWS.x.dropna()) and np.isnan(ascending["x"].iloc[-1])
    with pytest.raises(grpc.RpcError) as excinfo:
        meta.query(
            datasource_id, select=[common_pb2.SelectItem(field="n"), common_pb2.SelectItem(field="m", alias="n")]
        )
    assert "selected twice" in excinfo.value.details()
    with pytest.raises(grpc.RpcError) as excinfo:
        meta.query(datasource_id, limit=-1)
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_result_schema_carries_field_types(loaded, metadata_stub):
    meta, datasource_id = loaded
    query = common_pb2.Query(datasource_id=datasource_id)
    table = meta.query_table(query)
    types = {f.name: (f.metadata or {}).get(b"thresher.type") for f in table.schema}
    assert types == {
        "path": None,
        "datapoint_id": None,
        "n": b"int",
        "m": b"int",
        "x": b"float",
        "flag": b"bool",
        "label": b"string",
        "t": b"datetime",
    }
    described = metadata_stub.DescribeQuery(pb.DescribeQueryRequest(query=query))
    assert described.total_rows == len(ROWS)
    limited = common_pb2.Query(datasource_id=datasource_id, limit=2, filter=compare("n", "ge", 1))
    assert metadata_stub.DescribeQuery(pb.DescribeQueryRequest(query=limited)).total_rows == 2


def test_large_results_arrive_in_several_batches(meta, metadata_stub):
    source = meta.datasource()
    count = 300_000
    meta.upload(source.id, pa.table({"path": [f"p{i}" for i in range(count)], "v": np.arange(count)}))
    responses = list(
        metadata_stub.ExecuteQuery(
            pb.ExecuteQueryRequest(query=common_pb2.Query(datasource_id=source.id), max_batch_rows=50_000)
        )
    )
    assert responses[0].WhichOneof("part") == "schema" and len(responses) >= 7
    table = meta.query_table(common_pb2.Query(datasource_id=source.id, filter=compare("v", "ge", count - 10)))
    assert sorted(table["v"].to_pylist()) == list(range(count - 10, count))


def test_saved_datasets(meta, metadata_stub, namespace, loaded):
    _, datasource_id = loaded
    query = common_pb2.Query(datasource_id=datasource_id, filter=compare("n", "ge", 5), limit=10)
    saved = metadata_stub.SaveDataset(pb.SaveDatasetRequest(namespace=namespace, name="big-n", query=query)).dataset
    fetched = metadata_stub.GetDataset(pb.GetDatasetRequest(namespace=namespace, name="big-n")).dataset
    assert fetched == saved and fetched.query == query
    assert sorted(meta.query_table(fetched.query)["path"].to_pylist()) == ["e.bin", "img/b.jpg", "img/d.png"]
    with pytest.raises(grpc.RpcError) as excinfo:
        metadata_stub.SaveDataset(pb.SaveDatasetRequest(namespace=namespace, name="big-n", query=query))
    assert excinfo.value.code() == grpc.StatusCode.ALREADY_EXISTS
    listed = metadata_stub.ListDatasets(pb.ListDatasetsRequest(namespace=namespace)).datasets
    assert [d.name for d in listed] == ["big-n"]
    metadata_stub.DeleteDataset(pb.DeleteDatasetRequest(id=saved.id))
    with pytest.raises(grpc.RpcError) as excinfo:
        metadata_stub.GetDataset(pb.GetDatasetRequest(id=saved.id))
    assert excinfo.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as excinfo:
        metadata_stub.SaveDataset(pb.SaveDatasetRequest(namespace="other/ns", name="x", query=query))
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_as_of_sees_each_earlier_state(meta):
    source = meta.datasource()
    moments = []

    def mark():
        moments.append(dt.datetime.now(UTC))

    meta.upload(source.id, pa.table({"path": ["a", "b"], "x": [1, 2]}))
    mark()
    meta.upload(source.id, pa.table({"path": ["a", "c"], "x": [10, 3], "s": ["new", "c"]}))
    mark()
    meta.stub.DeleteDatapoints(pb.DeleteDatapointsRequest(datasource_id=source.id, paths=["b"]))
    meta.stub.DeleteMetadata(pb.DeleteMetadataRequest(datasource_id=source.id, paths=["a"], fields=["s"]))
    mark()
    meta.upload(source.id, pa.table({"path": ["b"], "x": [20]}))
    mark()

    def state(moment):
        query = common_pb2.Query(datasource_id=source.id)
        query.as_of.FromDatetime(moment)
        frame = meta.query_table(query).to_pandas().set_index("path")
        return {
            p: {k: (None if pd.isna(v) else v) for k, v in row.items() if k != "datapoint_id"}
            for p, row in frame.iterrows()
        }

    assert state(moments[0]) == {"a": {"x": 1}, "b": {"x": 2}}
    assert state(moments[1]) == {"a": {"x": 10, "s": "new"}, "b": {"x": 2, "s": None}, "c": {"x": 3, "s": "c"}}
    assert state(moments[2]) == {"a": {"x": 10, "s": None}, "c": {"x": 3, "s": "c"}}
    assert state(moments[3]) == {"a": {"x": 10, "s": None}, "b": {"x": 20, "s": None}, "c": {"x": 3, "s": "c"}}
    assert state(moments[0] - dt.timedelta(hours=1)) == {}


@pytest.mark.parametrize(
    "filter_, limit, expected",
    [
        (None, None, 6),
        (compare("n", "ge", 1), None, 4),
        (compare("n", "ge", 1), 2, 2),
        (compare("label", "eq", "nobody"), None, 0),
        (None, 0, 0),
    ],
)
def test_count_only_counts_without_a_schema_or_ids(loaded, metadata_stub, filter_, limit, expected):
    meta, datasource_id = loaded
    query = common_pb2.Query(datasource_id=datasource_id, order_by=[common_pb2.OrderBy(field="x")])
    if filter_ is not None:
        query.filter.CopyFrom(filter_)
    if limit is not None:
        query.limit = limit
    counted = metadata_stub.DescribeQuery(pb.DescribeQueryRequest(query=query, count_only=True))
    assert counted.total_rows == expected
    assert (counted.schema, counted.min_datapoint_id, counted.max_datapoint_id) == (b"", 0, 0)
    assert metadata_stub.DescribeQuery(pb.DescribeQueryRequest(query=query)).total_rows == expected


def test_count_only_reads_as_of_and_refuses_what_describe_refuses(meta, metadata_stub):
    source = meta.datasource()
    meta.upload(source.id, pa.table({"path": ["a", "b"], "x": [1, 2]}))
    between = dt.datetime.now(UTC)
    meta.upload(source.id, pa.table({"path": ["c"], "x": [3]}))
    query = common_pb2.Query(datasource_id=source.id)
    query.as_of.FromDatetime(between)
    assert metadata_stub.DescribeQuery(pb.DescribeQueryRequest(query=query, count_only=True)).total_rows == 2
    missing = common_pb2.Query(datasource_id=source.id, filter=compare("nope", "eq", 1))
    with pytest.raises(grpc.RpcError) as refused:
        metadata_stub.DescribeQuery(pb.DescribeQueryRequest(query=missing, count_only=True))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in refused.value.details()


def test_read_query_holds_values_python_cannot(meta, metadata_stub):
    # Year 20000 fits Arrow and both stores but not Python's datetime: a small read still answers.
    source = meta.datasource()
    far = pa.array([253402300800000000 * 2, 0], pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    meta.upload(source.id, pa.table({"path": ["far", "epoch"], "t": far, "n": [1, 2]}))
    query = common_pb2.Query(datasource_id=source.id, order_by=[common_pb2.OrderBy(field="n")], limit=2)
    answer = metadata_stub.ReadQuery(pb.ReadQueryRequest(query=query, max_rows=2))
    direct = pa.ipc.open_stream(answer.arrow_stream).read_all()
    assert direct.equals(meta.query_table(query))
    assert direct.column("t").cast(pa.int64()).to_pylist() == far.cast(pa.int64()).to_pylist()

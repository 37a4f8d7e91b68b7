"""Vector fields and nearest-neighbour queries through the metadata service, on DuckDB and PostgreSQL."""

from __future__ import annotations

import grpc
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thresher.core.arrow_io import read_batch, read_schema
from thresher.core.transport import open_channel
from thresher.core.types import TYPE_METADATA_KEY
from thresher.core.vectors import distances, to_numpy, vector_array
from thresher.v1 import common_pb2, metadata_service_pb2_grpc
from thresher.v1 import metadata_service_pb2 as pb

from .conftest import MetadataHelper, compare

METRIC_ENUMS = {
    "cosine": common_pb2.DISTANCE_METRIC_COSINE,
    "l2": common_pb2.DISTANCE_METRIC_L2,
    "dot": common_pb2.DISTANCE_METRIC_DOT,
}


def _paths(n: int, prefix: str = "p") -> pa.Array:
    return pa.array([f"{prefix}{i:04d}" for i in range(n)])


def _nearest(
    datasource_id: int,
    field: str,
    vector=None,
    path: str | None = None,
    k: int = 10,
    metric: str = "cosine",
    filter_=None,
    as_of=None,
    select=None,
    exact: bool = False,
) -> common_pb2.Query:
    query = common_pb2.Query(datasource_id=datasource_id)
    query.nearest.field = field
    query.nearest.k = k
    query.nearest.metric = METRIC_ENUMS[metric]
    query.nearest.exact = exact
    if vector is not None:
        query.nearest.vector.values.extend(np.asarray(vector, dtype=np.float32).tolist())
    if path is not None:
        query.nearest.path = path
    if filter_ is not None:
        query.filter.CopyFrom(filter_)
    if as_of is not None:
        query.as_of.FromDatetime(as_of)
    for name in select or ():
        query.select.append(common_pb2.SelectItem(field=name))
    return query


def test_vectors_round_trip_as_fixed_size_lists(meta):
    ds = meta.datasource("vec_round_trip")
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5, 8)).astype(np.float32)
    meta.upload(ds.id, pa.table({"path": _paths(5), "emb": vector_array(vectors), "n": list(range(5))}))
    table = meta.query_table(common_pb2.Query(datasource_id=ds.id))
    field = table.schema.field("emb")
    assert field.type == pa.list_(pa.float32(), 8)
    assert field.metadata[TYPE_METADATA_KEY] == b"vector"
    np.testing.assert_array_equal(to_numpy(table["emb"]), vectors)
    fields = {f.name: f for f in meta.stub.GetDatasource(pb.GetDatasourceRequest(id=ds.id)).datasource.fields}
    assert fields["emb"].type == common_pb2.FIELD_TYPE_VECTOR


def test_list_columns_and_float16_are_accepted(meta):
    ds = meta.datasource("vec_lists")
    lists = pa.array([[1.0, 2.0, 3.0], None, [4, 5, 6]], pa.list_(pa.float64()))
    meta.upload(ds.id, pa.table({"path": _paths(3), "emb": lists}))
    halves = vector_array(np.array([[1.5, 2.5], [3.5, 4.5]], dtype=np.float16))
    meta.upload(ds.id, pa.table({"path": _paths(2), "half": halves}))
    table = meta.query_table(common_pb2.Query(datasource_id=ds.id)).sort_by("path")
    assert table.schema.field("emb").type == pa.list_(pa.float32(), 3)
    assert table["emb"].to_pylist() == [[1.0, 2.0, 3.0], None, [4.0, 5.0, 6.0]]
    assert table.schema.field("half").type == pa.list_(pa.float16(), 2)
    np.testing.assert_array_equal(to_numpy(table["half"])[:2], np.array([[1.5, 2.5], [3.5, 4.5]], np.float16))


@pytest.mark.parametrize(
    "bad, message",
    [
        (pa.array([[1.0, 2.0], [1.0, 2.0, 3.0]], pa.list_(pa.float32())), "'p0001' has one of 3"),
        (pa.array([[1.0, 2.0], [float("nan"), 2.0]], pa.list_(pa.float32())), "'p0001' holds a NaN"),
        (pa.array([[1.0, 2.0], [None, 2.0]], pa.list_(pa.float32())), "'p0001' holds a missing element"),
        (pa.array([[1.0, 2.0], [1e39, 2.0]], pa.list_(pa.float64())), "'p0001' holds a NaN or infinite"),
    ],
)
def test_a_bad_vector_rejects_the_whole_write_naming_the_datapoint(meta, bad, message):
    ds = meta.datasource(f"vec_bad_{abs(hash(message)) % 10**8}")
    with pytest.raises(grpc.RpcError) as raised:
        meta.upload(ds.id, pa.table({"path": _paths(2), "emb": bad, "n": [1, 2]}))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in raised.value.details()
    assert meta.query(ds.id).empty


def test_the_first_write_fixes_the_dimension_and_type(meta):
    ds = meta.datasource("vec_fixed")
    meta.upload(ds.id, pa.table({"path": _paths(1), "emb": vector_array(np.ones((1, 4)))}))
    with pytest.raises(grpc.RpcError) as raised:
        meta.upload(ds.id, pa.table({"path": _paths(2), "emb": vector_array(np.ones((2, 5)))}))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "holds vectors of 4 elements; datapoint 'p0000' has one of 5" in raised.value.details()
    with pytest.raises(grpc.RpcError) as raised:
        meta.upload(ds.id, pa.table({"path": _paths(1), "emb": [3]}))
    assert "has type vector; got int" in raised.value.details()
    with pytest.raises(grpc.RpcError) as raised:
        meta.upload(ds.id, pa.table({"path": _paths(1), "n": [1]}))
        meta.upload(ds.id, pa.table({"path": _paths(1), "n": vector_array(np.ones((1, 4)))}))
    assert "has type int; got vector" in raised.value.details()


def test_vectors_through_upsert_metadata_values(meta):
    ds = meta.datasource("vec_proto")
    value = common_pb2.Value(vector_value=common_pb2.FloatVector(values=[1.0, 2.0, 3.0]))
    meta.stub.UpsertMetadata(
        pb.UpsertMetadataRequest(
            datasource_id=ds.id, datapoints=[pb.DatapointValues(path="a", values={"emb": value})], create_missing=True
        )
    )
    table = meta.query_table(common_pb2.Query(datasource_id=ds.id))
    assert table["emb"].to_pylist() == [[1.0, 2.0, 3.0]]


def _stream(responses) -> pa.Table:
    responses = iter(responses)
    schema = read_schema(next(responses).schema)
    return pa.Table.from_batches([read_batch(r.record_batch, schema) for r in responses], schema)


def test_vectors_are_versioned(meta):
    ds = meta.datasource("vec_versions")
    meta.upload(ds.id, pa.table({"path": _paths(2), "emb": vector_array([[1, 0], [0, 1]])}))
    meta.upload(ds.id, pa.table({"path": _paths(1), "emb": vector_array([[5, 5]])}))
    history = _stream(meta.stub.GetHistory(pb.GetHistoryRequest(datasource_id=ds.id, path="p0000", field="emb")))
    assert history.schema.field("emb").type == pa.list_(pa.float32(), 2)
    assert history["emb"].to_pylist() == [[1.0, 0.0], [5.0, 5.0]]
    between = history["written_at"][0].as_py()  # as_of includes the writes made at that instant
    now = meta.query_table(common_pb2.Query(datasource_id=ds.id)).sort_by("path")
    assert now["emb"].to_pylist() == [[5.0, 5.0], [0.0, 1.0]]
    query = common_pb2.Query(datasource_id=ds.id)
    query.as_of.FromDatetime(between)
    before = meta.query_table(query)
    assert before.schema.field("emb").type == pa.list_(pa.float32(), 2)
    assert before.sort_by("path")["emb"].to_pylist() == [[1.0, 0.0], [0.0, 1.0]]
    # A select item read at its own instant (joined from the log) carries vectors too.
    timed = common_pb2.Query(
        datasource_id=ds.id,
        select=[common_pb2.SelectItem(field="emb"), common_pb2.SelectItem(field="emb", alias="emb_then")],
    )
    timed.select[1].as_of.FromDatetime(between)
    both = meta.query_table(timed).sort_by("path")
    assert both.schema.field("emb_then").type == pa.list_(pa.float32(), 2)
    assert both["emb"].to_pylist() == [[5.0, 5.0], [0.0, 1.0]]
    assert both["emb_then"].to_pylist() == [[1.0, 0.0], [0.0, 1.0]]
    # The nearest search at the earlier instant sees the earlier vectors.
    at_then = meta.query_table(_nearest(ds.id, "emb", [1, 0], k=1, as_of=between))
    assert at_then["path"].to_pylist() == ["p0000"] and at_then["distance"][0].as_py() == pytest.approx(0.0)
    at_now = meta.query_table(_nearest(ds.id, "emb", [1, 0], k=1, metric="l2"))
    assert at_now["path"].to_pylist() == ["p0001"]


@pytest.fixture(scope="module")
def loaded(metadata_server):
    """A datasource of 300 random 6-d vectors (with a few missing) and a category field, per engine."""
    channel = open_channel(metadata_server[0])
    meta = MetadataHelper(metadata_service_pb2_grpc.MetadataServiceStub(channel), "vectors/fuzz")
    ds = meta.datasource(f"fuzz_{id(channel)}")
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(300, 6)).astype(np.float32)
    vectors[:20] = vectors[20:40]  # exact duplicates make ties
    array = vector_array(vectors)
    missing = np.zeros(300, bool)
    missing[::37] = True
    array = pa.FixedSizeListArray.from_arrays(array.values, 6, mask=pa.array(missing))
    category = rng.integers(0, 10, 300)
    meta.upload(ds.id, pa.table({"path": _paths(300), "emb": array, "category": category}))
    yield meta, ds.id, vectors, missing, category
    channel.close()


def _brute_force(vectors, keep, query, metric, k):
    ids = np.flatnonzero(keep)
    found = distances(vectors[ids], query, metric)
    order = np.lexsort((ids, found))[:k]
    return ids[order] + 1, found[order]  # datapoint ids start at 1, in upload order


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    k=st.integers(1, 40),
    metric=st.sampled_from(["cosine", "l2", "dot"]),
    categories=st.lists(st.integers(0, 9), max_size=10, unique=True),
    query=st.lists(st.floats(-3, 3, width=32), min_size=6, max_size=6),
)
def test_nearest_equals_brute_force_under_a_filter(loaded, k, metric, categories, query):
    meta, datasource_id, vectors, missing, category = loaded
    filter_ = compare("category", "isin", values=categories) if categories else None
    keep = ~missing & (np.isin(category, categories) if categories else True)
    table = meta.query_table(_nearest(datasource_id, "emb", query, k=k, metric=metric, filter_=filter_))
    want_ids, want = _brute_force(vectors.astype(np.float64), keep, np.asarray(query, np.float32), metric, k)
    got = table["distance"].to_numpy()
    assert len(table) == len(want_ids)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    assert table["datapoint_id"].to_pylist() == want_ids.tolist()
    assert set(table.column_names) == {"path", "datapoint_id", "emb", "category", "distance"}


def test_nearest_by_path_and_limits(loaded):
    meta, datasource_id, vectors, missing, category = loaded
    table = meta.query_table(_nearest(datasource_id, "emb", path="p0050", k=5, select=["category"]))
    assert table.column_names == ["path", "datapoint_id", "category", "distance"]
    want_ids, _ = _brute_force(vectors, ~missing, vectors[50], "cosine", 5)
    assert table["datapoint_id"].to_pylist() == want_ids.tolist()
    limited = _nearest(datasource_id, "emb", vectors[0], k=8)
    limited.limit = 3
    assert len(meta.query_table(limited)) == 3
    described = meta.stub.DescribeQuery(pb.DescribeQueryRequest(query=_nearest(datasource_id, "emb", vectors[0], k=8)))
    assert described.total_rows == 8


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda q: setattr(q.nearest, "k", 0), "k must be between 1"),
        (lambda q: q.nearest.vector.values.append(1.0), "has 7 elements; the field has 6"),
        (
            lambda q: setattr(q.nearest, "field", "category"),
            "nearest needs a vector field; field 'category' has type int",
        ),
        (lambda q: q.order_by.append(common_pb2.OrderBy(field="category")), "cannot also have order_by"),
        (lambda q: setattr(q.nearest, "path", "nowhere"), "datapoint 'nowhere' not found"),
        (lambda q: setattr(q.nearest, "path", "p0000"), "has no value for field 'emb'"),
    ],
)
def test_bad_nearest_queries_fail_precisely(loaded, change, message):
    meta, datasource_id, vectors, *_ = loaded
    query = _nearest(datasource_id, "emb", vectors[0], k=3)
    change(query)
    with pytest.raises(grpc.RpcError) as raised:
        meta.query_table(query)
    assert message in raised.value.details()
    assert raised.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)


def test_facets_refuse_a_nearest_query(meta):
    ds = meta.datasource("vec_facets")
    meta.upload(ds.id, pa.table({"path": _paths(2), "emb": vector_array([[1, 0], [0, 1]]), "n": [1, 2]}))
    with pytest.raises(grpc.RpcError) as raised:
        meta.stub.CountValues(pb.CountValuesRequest(query=_nearest(ds.id, "emb", [1, 0], k=1), field="n"))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nearest-neighbour" in raised.value.details()

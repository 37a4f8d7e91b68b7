"""The ANN vector index: recall under filters, never fewer than k, writes after the build, replicas."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from thresher.core.vectors import vector_array
from thresher.services.metadata import nearest, vector_index
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as pb

from .conftest import compare
from .test_vectors import _brute_force, _nearest, _paths

pytest.importorskip("usearch")

N, D = 3000, 16


@pytest.fixture
def indexed(meta, metadata_server):
    """A datasource of N random vectors with a ``bucket`` field (0..99), indexed for cosine."""
    ds = meta.datasource(f"indexed_{np.random.default_rng().integers(1 << 30)}")
    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(N, D)).astype(np.float32)
    bucket = np.arange(N) % 100
    meta.upload(ds.id, pa.table({"path": _paths(N), "emb": vector_array(vectors), "bucket": bucket}))
    built = meta.stub.CreateVectorIndex(
        pb.CreateVectorIndexRequest(
            datasource_id=ds.id,
            field="emb",
            metric=common_pb2.DISTANCE_METRIC_COSINE,
            connectivity=12,
            expansion_add=48,
        )
    )
    assert built.size == N and len(built.digest) == 64
    return meta, metadata_server[1], ds.id, vectors, bucket


@pytest.fixture
def graph_always(monkeypatch):
    """Makes the index answer even very selective filters from the graph (the small-scale stand-in for 1M)."""
    monkeypatch.setattr(vector_index, "EXACT_BELOW", 0)
    monkeypatch.setattr(vector_index, "EXACT_FRACTION", 0.0)


def _search(store, query):
    found = vector_index.search(store, nearest.plan(store, query))
    assert found is not None, "the index did not answer"
    return found


@pytest.mark.parametrize("kept_buckets", [100, 10, 1])
def test_recall_under_filters_keeping_all_a_tenth_and_a_hundredth(indexed, graph_always, kept_buckets):
    meta, store, datasource_id, vectors, bucket = indexed
    filter_ = compare("bucket", "lt", kept_buckets) if kept_buckets < 100 else None
    keep = bucket < kept_buckets
    hits = total = 0
    for i in range(20):
        query = vectors[(i * 37) % N] + 0.05
        ids, dists = _search(store, _nearest(datasource_id, "emb", query, k=10, filter_=filter_))
        want, _ = _brute_force(vectors, keep, query, "cosine", 10)
        assert len(ids) == 10 and set(ids) <= set(np.flatnonzero(keep) + 1)
        assert np.all(np.diff(dists) >= 0)
        hits += len(set(ids.tolist()) & set(want.tolist()))
        total += 10
    assert hits / total >= 0.95


def test_k_results_whenever_k_match(indexed, graph_always):
    meta, store, datasource_id, vectors, bucket = indexed
    # Exactly 7 datapoints match: k=7 gives all of them, k=10 gives those 7 and no others.
    only = compare("path", "isin", values=[f"p{i:04d}" for i in range(42, 42 + 700, 100)])
    table = meta.query_table(_nearest(datasource_id, "emb", vectors[0], k=7, filter_=only))
    assert sorted(table["path"].to_pylist()) == [f"p{i:04d}" for i in range(42, 742, 100)]
    table = meta.query_table(_nearest(datasource_id, "emb", vectors[0], k=10, filter_=only))
    assert len(table) == 7


def test_writes_after_the_build_are_seen(indexed, graph_always):
    meta, store, datasource_id, vectors, bucket = indexed
    query = vectors[5] * -1.0
    # A new datapoint exactly at the query, an old one moved onto it, and the old nearest deleted.
    before = meta.query_table(_nearest(datasource_id, "emb", query, k=1))["path"][0].as_py()
    meta.upload(
        datasource_id, pa.table({"path": ["new.png", "p0009"], "emb": vector_array([query, query]), "bucket": [1, 1]})
    )
    meta.stub.DeleteDatapoints(pb.DeleteDatapointsRequest(datasource_id=datasource_id, paths=[before]))
    ids, dists = _search(store, _nearest(datasource_id, "emb", query, k=3))
    table = meta.query_table(_nearest(datasource_id, "emb", query, k=3))
    assert sorted(table["path"].to_pylist()[:2]) == ["new.png", "p0009"]
    assert table["distance"].to_pylist()[:2] == pytest.approx([0.0, 0.0], abs=1e-6)
    assert before not in table["path"].to_pylist()
    exact = meta.query_table(_nearest(datasource_id, "emb", query, k=3, exact=True))
    assert table["path"].to_pylist() == exact["path"].to_pylist()


def test_other_metrics_and_as_of_answer_exactly(indexed):
    meta, store, datasource_id, vectors, bucket = indexed
    assert (
        vector_index.search(store, nearest.plan(store, _nearest(datasource_id, "emb", vectors[1], metric="l2"))) is None
    )
    table = meta.query_table(_nearest(datasource_id, "emb", vectors[1], k=5, metric="l2"))
    want, _ = _brute_force(vectors, np.ones(N, bool), vectors[1], "l2", 5)
    assert table["datapoint_id"].to_pylist() == want.tolist()


def test_an_index_on_a_non_vector_field_is_refused(indexed):
    import grpc

    meta, _, datasource_id, *_ = indexed
    with pytest.raises(grpc.RpcError) as raised:
        meta.stub.CreateVectorIndex(pb.CreateVectorIndexRequest(datasource_id=datasource_id, field="bucket"))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "needs a vector field; field 'bucket' has type int" in raised.value.details()


def test_another_replica_loads_the_index_from_shared_storage(indexed, graph_always, monkeypatch):
    meta, store, datasource_id, vectors, _ = indexed
    query = _nearest(datasource_id, "emb", vectors[3], k=10)
    ids, _ = _search(store, query)
    # A replica that has not loaded it: forget every loaded index, as a fresh process would be.
    monkeypatch.setattr(vector_index, "_loaded", type(vector_index._loaded)())
    again, _ = _search(store, query)
    assert again.tolist() == ids.tolist()
    assert vector_index._cache(store)[(datasource_id, "emb")].index.size == N


def test_a_repeated_filtered_search_sees_writes_to_the_filtered_field(indexed, graph_always):
    meta, store, datasource_id, vectors, bucket = indexed
    outside = next(i for i in range(N) if bucket[i] >= 10)
    query = vectors[outside]
    filter_ = compare("bucket", "lt", 10)
    first = meta.query_table(_nearest(datasource_id, "emb", query, k=5, filter_=filter_))
    assert f"p{outside:04d}" not in first["path"].to_pylist()
    # The datapoint at the query joins the filter (its vector untouched); the nearest one inside leaves it.
    leaving = first["path"][0].as_py()
    meta.upload(datasource_id, pa.table({"path": [f"p{outside:04d}", leaving], "bucket": [3, 50]}))
    again = meta.query_table(_nearest(datasource_id, "emb", query, k=5, filter_=filter_))
    assert again["path"][0].as_py() == f"p{outside:04d}" and again["distance"][0].as_py() == pytest.approx(0, abs=1e-6)
    assert leaving not in again["path"].to_pylist() and len(again) == 5


def test_a_search_without_a_filter_drops_a_deleted_datapoint_and_the_marker_moves(indexed, graph_always):
    # The kept ids of "no filter" are cached per write marker too: a delete must move the marker.
    meta, store, datasource_id, vectors, bucket = indexed
    query = vectors[5]
    first = meta.query_table(_nearest(datasource_id, "emb", query, k=3))
    assert first["path"][0].as_py() == "p0005"
    marker = store.write_marker(datasource_id)
    meta.stub.DeleteDatapoints(pb.DeleteDatapointsRequest(datasource_id=datasource_id, paths=["p0005"]))
    assert store.write_marker(datasource_id) != marker
    again = meta.query_table(_nearest(datasource_id, "emb", query, k=3))
    assert "p0005" not in again["path"].to_pylist() and len(again) == 3


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_a_selective_filter_through_the_index_equals_the_exact_search(indexed, metric):
    # 1% of the index: compared exactly from the vectors the index keeps (a cached matrix and norms);
    # the answer, distances included, is the store's exact one, the first time and from the cache.
    meta, store, datasource_id, vectors, bucket = indexed
    if metric == "l2":
        meta.stub.CreateVectorIndex(
            pb.CreateVectorIndexRequest(datasource_id=datasource_id, field="emb", metric=common_pb2.DISTANCE_METRIC_L2)
        )
    filter_ = compare("bucket", "lt", 1)
    for i in range(3):
        query = _nearest(datasource_id, "emb", vectors[i * 101] + 0.01, k=10, filter_=filter_, metric=metric)
        ids, dists = _search(store, query)
        want_ids, want = nearest.exact(store, nearest.plan(store, query))
        assert ids.tolist() == want_ids.tolist()
        np.testing.assert_allclose(dists, want, rtol=1e-12, atol=1e-15)


def test_a_scalar_select_is_answered_from_the_cached_rows_and_equals_the_statement(indexed, graph_always):
    # A select of small scalars: the filter's rows are read once with the kept ids and the winners are
    # taken from them. The result is the graph's own winners, in its order, with their stored values and
    # the distances the exact answer gives them; the graph is approximate, so against the exact answer
    # only its recall is bounded (a rank may differ where the graph missed a neighbour).
    meta, store, datasource_id, vectors, bucket = indexed
    filter_ = compare("bucket", "lt", 10)
    select = [common_pb2.SelectItem(field="bucket"), common_pb2.SelectItem(field="bucket", alias="again")]

    def query(i: int, exact: bool = False) -> common_pb2.Query:
        built = _nearest(datasource_id, "emb", vectors[i * 7] + 0.01, k=10, filter_=filter_, exact=exact)
        built.select.extend(select)
        return built

    hits = 0
    for i in range(3):
        found = vector_index.search_with_rows(store, nearest.plan(store, query(i)))
        assert found is not None and found[2].rows is not None, "the rows were not cached"
        ids, distances, _ = found
        table = meta.query_table(query(i))
        exact = meta.query_table(query(i, exact=True))
        assert table.schema == exact.schema
        assert table.column_names == ["path", "datapoint_id", "bucket", "again", "distance"]
        assert table["datapoint_id"].to_pylist() == ids.tolist()
        assert table["path"].to_pylist() == [f"p{n - 1:04d}" for n in ids.tolist()]
        assert table["bucket"].to_pylist() == bucket[ids - 1].tolist()
        assert table["again"].to_pylist() == table["bucket"].to_pylist()
        np.testing.assert_allclose(table["distance"].to_numpy(), distances, rtol=1e-5, atol=1e-6)
        exact_distance = dict(zip(exact["path"].to_pylist(), exact["distance"].to_pylist(), strict=True))
        shared = [p for p in table["path"].to_pylist() if p in exact_distance]
        hits += len(shared)
        got = dict(zip(table["path"].to_pylist(), table["distance"].to_pylist(), strict=True))
        np.testing.assert_allclose([got[p] for p in shared], [exact_distance[p] for p in shared], rtol=1e-5, atol=1e-6)
    assert hits >= 27  # recall@10 of at least 0.9 over the three searches


def test_cached_rows_follow_a_write_of_a_selected_field(indexed, graph_always):
    meta, store, datasource_id, vectors, bucket = indexed
    query = _nearest(datasource_id, "emb", vectors[3], k=3, select=["bucket"])
    first = meta.query_table(query)
    assert first["path"][0].as_py() == "p0003" and first["bucket"][0].as_py() == 3
    meta.upload(datasource_id, pa.table({"path": ["p0003"], "bucket": [77]}))
    again = meta.query_table(query)
    assert again["path"][0].as_py() == "p0003" and again["bucket"][0].as_py() == 77


def test_a_select_of_the_vector_field_is_not_cached(indexed, graph_always):
    # The vectors of a large view would make the cache weigh gigabytes: the winners are read by statement.
    meta, store, datasource_id, vectors, bucket = indexed
    query = _nearest(datasource_id, "emb", vectors[4], k=3)  # no select: every field, the vector too
    found = vector_index.search_with_rows(store, nearest.plan(store, query))
    assert found is not None and found[2].rows is None
    table = meta.query_table(query)
    assert table["path"][0].as_py() == "p0004"
    np.testing.assert_allclose(table["emb"].to_pylist()[0], vectors[4])
    # Their paths are kept instead, and the winners' rows read by them: the same rows, in distance order.
    assert found[2].paths == table["path"].to_pylist()
    exact = meta.query_table(_nearest(datasource_id, "emb", vectors[4], k=3, exact=True))
    assert table.column_names == exact.column_names and table["path"].to_pylist() == exact["path"].to_pylist()
    np.testing.assert_allclose(table["distance"].to_numpy(), exact["distance"].to_numpy(), rtol=1e-5, atol=1e-6)


def test_winners_read_by_path_fall_back_to_the_filter_once_anything_was_written(indexed, graph_always):
    # Read by path, the filter is not applied again: that holds only under the marker the search ran at.
    meta, store, datasource_id, vectors, bucket = indexed
    query = _nearest(datasource_id, "emb", vectors[5], k=3, filter_=compare("bucket", "lt", 10))
    search = nearest.plan(store, query)
    ids, found, known = vector_index.search_with_rows(store, search)
    assert known.rows is None and known.paths is not None and len(known.paths) == 3
    fresh = nearest.result(store, search, ids, found, known=known)[1]
    by_path = pa.Table.from_batches(list(fresh))
    # The same winners with a marker that is no longer the store's, and paths that would be wrong: the
    # rows come from the ids under the filter, so the answer is the same.
    stale = nearest.Known(paths=["p9999", "p9998", "p9997"], marker=-1)
    again = pa.Table.from_batches(list(nearest.result(store, search, ids, found, known=stale)[1]))
    assert by_path.to_pylist() == again.to_pylist()
    assert [int(i) for i in by_path["datapoint_id"].to_pylist()] == [int(i) for i in ids]

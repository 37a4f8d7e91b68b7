"""CountValues: value counts and histograms of one field over a query's result, computed in the store."""

import grpc
import pytest

from thresher.core.arrow_io import read_table
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as pb

from .conftest import compare
from .test_queries import loaded  # noqa: F401 - the fixture


def _facet(meta, datasource_id, field, filter_=None, **kw):
    query = common_pb2.Query(datasource_id=datasource_id)
    if filter_ is not None:
        query.filter.CopyFrom(filter_)
    response = meta.stub.CountValues(pb.CountValuesRequest(query=query, field=field, **kw))
    return read_table(response.counts).to_pylist(), response.total_rows, response.missing


def test_value_counts_follow_the_filter_most_frequent_first(loaded):
    meta, ds = loaded
    counts, total, missing = _facet(meta, ds, "n")
    assert counts[0] == {"value": 5, "count": 2}
    assert sorted((c["value"], c["count"]) for c in counts) == [(-3, 1), (1, 1), (5, 2), (7, 1)]
    assert (total, missing) == (6, 1)
    counts, total, missing = _facet(meta, ds, "label", compare("path", "startswith", "img/"))
    assert counts == [{"value": "Cat", "count": 1}, {"value": "cat", "count": 1}, {"value": "dog", "count": 1}]
    assert (total, missing) == (4, 1)


def test_max_values_keeps_the_most_frequent(loaded):
    meta, ds = loaded
    counts, _, _ = _facet(meta, ds, "n", max_values=1)
    assert counts == [{"value": 5, "count": 2}]


def test_histogram_bins_cover_min_to_max(loaded):
    meta, ds = loaded
    counts, total, missing = _facet(meta, ds, "x", bins=4)  # -1, 0.5, 2.5, 3.0, 5.0 over [-1, 5]
    assert [(c["low"], c["high"]) for c in counts] == [(-1.0, 0.5), (0.5, 2.0), (2.0, 3.5), (3.5, 5.0)]
    assert [c["count"] for c in counts] == [1, 1, 2, 1]
    assert (total, missing) == (6, 1)


def test_histogram_of_a_filtered_query(loaded):
    meta, ds = loaded
    counts, total, _ = _facet(meta, ds, "x", compare("path", "startswith", "img/"), bins=2)  # 0.5, 3.0, 5.0
    assert [(c["low"], c["high"], c["count"]) for c in counts] == [(0.5, 2.75, 1), (2.75, 5.0, 2)]
    assert total == 4


def test_histogram_of_an_empty_result_has_no_bins(loaded):
    meta, ds = loaded
    counts, total, _ = _facet(meta, ds, "x", compare("path", "eq", "nothing"), bins=4)
    assert (counts, total) == ([], 0)


def test_bad_requests_name_the_problem(loaded):
    meta, ds = loaded
    with pytest.raises(grpc.RpcError) as error:
        _facet(meta, ds, "nope")
    assert error.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in error.value.details()
    with pytest.raises(grpc.RpcError) as error:
        _facet(meta, ds, "x", bins=-1)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "bins" in error.value.details()

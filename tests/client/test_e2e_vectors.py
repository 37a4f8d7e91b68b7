"""Vector fields and nearest-neighbour search end to end through the client (Flight uploads and reads)."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from thresher.core.errors import FieldTypeMismatchError, InvalidArgumentError, QueryError, UnknownPathsError
from thresher.core.types import FieldType
from thresher.core.vectors import distances, vector_array

FILES = {f"img{i:02d}.png": bytes([i]) for i in range(20)}
PATHS = sorted(FILES)


@pytest.fixture
def ds(make_datasource):
    return make_datasource(FILES, name="vectors")


@pytest.fixture
def embedded(ds):
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(len(PATHS), 16)).astype(np.float32)
    ds.upload_vectors("emb", PATHS, vectors)
    ds.upload_metadata_from_dataframe(pd.DataFrame({"path": PATHS, "even": [i % 2 == 0 for i in range(len(PATHS))]}))
    return ds, vectors


def test_upload_from_a_2d_array_and_read_back_as_numpy(embedded):
    ds, vectors = embedded
    assert ds.fields["emb"] is FieldType.VECTOR
    result = ds.order_by("path").all()
    assert result.arrow.schema.field("emb").type == pa.list_(pa.float32(), 16)
    np.testing.assert_array_equal(result.vectors("emb"), vectors)
    np.testing.assert_array_equal(np.stack(result.dataframe["emb"]), vectors)


def test_vectors_for_paths_the_datasource_lacks_are_refused_unless_created(ds):
    with pytest.raises(UnknownPathsError, match="extra/new.png"):
        ds.upload_vectors("emb", [PATHS[0], "extra/new.png"], np.ones((2, 3)))
    assert "emb" not in ds.fields  # refused whole: not even the field was made
    ds.upload_vectors("emb", [PATHS[0], "extra/new.png"], np.ones((2, 3)), create_missing=True)
    result = ds[ds["emb"].is_not_null()].order_by("path").all()
    assert result.dataframe["path"].tolist() == ["extra/new.png", PATHS[0]]


def test_list_columns_arrow_and_metadata_context_write_vectors(ds):
    frame = pd.DataFrame({"path": PATHS[:2], "emb": [np.array([1.0, 2.0]), np.array([3.0, 4.0])]})
    ds.upload_metadata_from_dataframe(frame)
    ds.upload_metadata_from_dataframe(pa.table({"path": PATHS[2:3], "emb": vector_array([[5.0, 6.0]])}))
    with ds.metadata_context() as ctx:
        ctx.update_metadata(PATHS[3], {"emb": np.array([7.0, 8.0], np.float32)})
        ctx.update_metadata(PATHS[4], {"emb": [9, 10]})
    result = ds[ds["emb"].is_not_null()].order_by("path").all()
    assert result.vectors("emb").tolist() == [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]


def test_a_bad_vector_writes_nothing_and_names_the_datapoint(embedded):
    ds, vectors = embedded
    bad = vectors[:3].copy()
    bad[2, 5] = np.nan
    with pytest.raises(InvalidArgumentError, match="img02.png"):
        ds.upload_vectors("emb", PATHS[:3], bad * 2)
    with pytest.raises(InvalidArgumentError, match="16 elements; datapoint 'img00.png' has one of 4"):
        ds.upload_vectors("emb", PATHS[:1], np.ones((1, 4)))
    with pytest.raises(InvalidArgumentError, match="NaN"):
        with ds.metadata_context() as ctx:
            ctx.update_metadata(PATHS[0], {"emb": np.full(16, np.nan)})
    np.testing.assert_array_equal(ds.order_by("path").all().vectors("emb"), vectors)
    with pytest.raises(FieldTypeMismatchError):
        with ds.metadata_context() as ctx:
            ctx.update_metadata(PATHS[0], {"emb": 3.0})


@pytest.mark.parametrize("metric", ["cosine", "l2", "dot"])
def test_nearest_under_a_filter_equals_brute_force(embedded, metric):
    ds, vectors = embedded
    query = vectors[4] + 0.1
    result = ds[ds["even"] == True].nearest("emb", query, k=5, metric=metric)  # noqa: E712
    keep = np.arange(0, len(PATHS), 2)
    found = distances(vectors[keep], query, metric)
    order = np.argsort(found, kind="stable")[:5]
    assert result.paths == [PATHS[i] for i in keep[order]]
    np.testing.assert_allclose(result.dataframe["distance"], found[order], rtol=1e-9)


def test_a_view_limit_and_k_both_bound_a_nearest_result(embedded):
    # The client sends min(k, limit) as the limit (the small answer's path); the rows stay the k nearest in order.
    ds, vectors = embedded
    five = ds.nearest("emb", vectors[2], k=5).paths
    assert len(five) == 5 and five[0] == PATHS[2]
    assert ds.limit(3).nearest("emb", vectors[2], k=5).paths == five[:3]
    assert ds.limit(50).nearest("emb", vectors[2], k=5).paths == five


def test_nearest_by_path_and_misuse(embedded):
    ds, vectors = embedded
    result = ds.nearest("emb", path=PATHS[7], k=3, metric="l2")
    assert result.paths[0] == PATHS[7] and result.dataframe["distance"][0] == 0.0
    with pytest.raises(QueryError, match="either a query vector or the path"):
        ds.nearest("emb", k=3)
    with pytest.raises(QueryError, match="has type bool"):
        ds.nearest("even", vectors[0])
    with pytest.raises(QueryError, match="unknown metric"):
        ds.nearest("emb", vectors[0], metric="hamming")
    with pytest.raises(QueryError, match="ordered by distance"):
        ds.order_by("path").nearest("emb", vectors[0])
    with pytest.raises(QueryError, match="is_null"):
        ds[ds["emb"] == [1.0] * 16]
    with pytest.raises(InvalidArgumentError, match="17 elements; the field has 16"):
        ds.nearest("emb", np.ones(17))


def test_find_duplicates_groups_near_copies_and_works_as_a_filter(ds):
    rng = np.random.default_rng(5)
    base = rng.normal(size=(len(PATHS), 8))
    base[3] = base[0] * 2.0  # same direction: cosine distance 0
    base[7] = base[0] + 1e-4  # nearly the same
    base[11] = base[12] + 1e-4
    ds.upload_vectors("emb", PATHS, base)
    groups = ds.find_duplicates("emb", threshold=1e-3)
    assert sorted(sorted(g) for g in groups) == [[PATHS[0], PATHS[3], PATHS[7]], [PATHS[11], PATHS[12]]]
    kept = ds[~ds["path"].isin(groups.duplicates)]
    assert kept.count() == len(PATHS) - 3
    in_l2 = ds.find_duplicates("emb", threshold=1e-3, metric="l2")  # base[3] is far from base[0] in l2
    assert sorted(sorted(g) for g in in_l2) == [[PATHS[0], PATHS[7]], [PATHS[11], PATHS[12]]]
    only_even = ds[ds["path"].isin(PATHS[::2])]
    assert all(len(g) > 1 for g in only_even.find_duplicates("emb", 1e-3))
    with pytest.raises(QueryError, match="threshold"):
        ds.find_duplicates("emb", -1)


def test_sample_diverse_picks_spread_points_and_saves_as_a_dataset(ds, namespace):
    # Four tight clusters of five: a diverse sample of four takes one from each.
    centres = np.array([[0, 0], [100, 0], [0, 100], [100, 100]], dtype=np.float32)
    vectors = np.repeat(centres, 5, axis=0) + np.random.default_rng(2).normal(scale=0.5, size=(20, 2))
    ds.upload_vectors("emb", PATHS, vectors)
    picked = ds.sample_diverse("emb", 4, seed=1)
    assert len(picked) == 4
    assert sorted(PATHS.index(p) // 5 for p in picked) == [0, 1, 2, 3]
    assert ds.sample_diverse("emb", 4, seed=1) == picked
    saved = ds[ds["path"].isin(picked)].save_dataset("diverse")
    assert sorted(saved.all().paths) == sorted(picked)
    assert sorted(ds.sample_diverse("emb", 50)) == PATHS


def test_create_vector_index_through_the_client(embedded):
    pytest.importorskip("usearch")
    ds, vectors = embedded
    built = ds.create_vector_index("emb", metric="l2", connectivity=8)
    assert built["size"] == len(PATHS) and built["metric"] == "l2" and len(built["digest"]) == 64
    result = ds[ds["even"] == True].nearest("emb", vectors[4], k=3, metric="l2")  # noqa: E712
    assert result.paths[0] == PATHS[4] and len(result) == 3
    with pytest.raises(QueryError, match="has type bool"):
        ds.create_vector_index("even")

"""Uploads from every Arrow producer, streamed through Flight DoPut, atomic even when the producer fails."""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from thresher.core.errors import FieldTypeMismatchError

# The interop extras (hf, polars) are not in the lowest-versions run of the client tests.
datasets = pytest.importorskip("datasets")
pl = pytest.importorskip("polars")

FILES = {f"f{i}.txt": b"x" for i in range(4)}
PATHS = list(FILES)
RANKS = [10, 11, 12, 13]


@pytest.fixture
def ds(make_datasource):
    return make_datasource(FILES)


def ranks(ds) -> list:
    return ds.select("rank").order_by("path").all().arrow.column("rank").to_pylist()


class CapsuleOnly:
    """An Arrow producer known only by the PyCapsule stream interface (as nanoarrow or arro3 objects are)."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self.table.__arrow_c_stream__(requested_schema)


def table() -> pa.Table:
    return pa.table({"path": PATHS, "rank": RANKS})


PRODUCERS = {
    "pandas": lambda: pd.DataFrame({"path": PATHS, "rank": RANKS}),
    "pyarrow table": table,
    "record batch reader": lambda: pa.RecordBatchReader.from_batches(
        table().schema, table().to_batches(max_chunksize=1)
    ),
    "polars": lambda: pl.DataFrame({"path": PATHS, "rank": RANKS}),
    "polars lazy": lambda: pl.DataFrame({"path": PATHS, "rank": RANKS}).lazy(),
    "duckdb relation": lambda: duckdb.sql(
        "select * from (values ('f0.txt', 10), ('f1.txt', 11), ('f2.txt', 12), ('f3.txt', 13)) t(path, rank)"
    ),
    "hugging face": lambda: datasets.Dataset.from_dict({"path": PATHS, "rank": RANKS}),
    "hugging face shuffled": lambda: datasets.Dataset.from_dict({"path": PATHS, "rank": RANKS}).shuffle(seed=1),
    "hugging face iterable": lambda: datasets.Dataset.from_dict({"path": PATHS, "rank": RANKS}).to_iterable_dataset(),
    "pycapsule": lambda: CapsuleOnly(table()),
}


@pytest.mark.parametrize("producer", PRODUCERS)
def test_upload_takes_every_arrow_producer(ds, producer):
    response = ds.upload(PRODUCERS[producer]())
    assert ranks(ds) == RANKS
    assert response.datapoints_written == 4


def test_upload_metadata_from_dataframe_takes_them_too(ds):
    ds.upload_metadata_from_dataframe(pl.DataFrame({"rank": RANKS, "path": PATHS}), path_column="path")
    assert ranks(ds) == RANKS


def test_anything_else_is_a_type_error_listing_what_is_accepted(ds):
    with pytest.raises(
        TypeError,
        match="cannot upload a builtins.dict: pass a pandas DataFrame.*polars.*DuckDB"
        ".*Hugging Face.*__arrow_c_stream__",
    ):
        ds.upload({"path": PATHS, "rank": RANKS})


def test_a_stream_whose_producer_fails_midway_writes_nothing(ds):
    sent = []

    def batches():
        for i, path in enumerate(PATHS[:3]):
            sent.append(path)
            yield pa.record_batch({"path": [path], "rank": [i]})
        raise RuntimeError("the producer broke")

    reader = pa.RecordBatchReader.from_batches(table().schema, batches())
    with pytest.raises(RuntimeError, match="the producer broke"):
        ds.upload(reader)
    assert sent == PATHS[:3]  # batches did leave before the failure
    assert "rank" not in ds.fields
    assert ds.upload(table()).datapoints_written == 4  # the service is fine afterwards


def test_a_bad_batch_midway_writes_nothing(ds):
    ds.upload(table())
    good = pa.record_batch({"path": ["f0.txt"], "rank": pa.array([1.0])})
    bad = pa.record_batch({"path": ["f1.txt"], "rank": pa.array([1.5])})  # not integral: not an int
    reader = pa.RecordBatchReader.from_batches(good.schema, iter([good, bad]))
    with pytest.raises(FieldTypeMismatchError, match="rank"):
        ds.upload(reader)
    assert ranks(ds) == RANKS


def test_a_stream_with_many_batches_commits_once_at_its_end(ds, make_datasource):
    big = make_datasource({}, name="big")
    n = 50_000
    paths = [f"virtual/{i:06d}" for i in range(n)]
    whole = pa.table({"path": paths, "rank": list(range(n))})
    reader = pa.RecordBatchReader.from_batches(whole.schema, whole.to_batches(max_chunksize=1000))
    assert big.upload(reader, create_missing=True).datapoints_written == n
    assert big.count() == n
    assert big.select("rank").order_by("path").all().arrow.column("rank").to_pylist() == list(range(n))

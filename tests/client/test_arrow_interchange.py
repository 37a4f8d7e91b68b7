"""Results and views as Arrow for pyarrow, polars, DuckDB, pandas and Hugging Face, against the real services."""

from __future__ import annotations

import io

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from PIL import Image

from tests.downloads.conftest import conn, s3_source  # noqa: F401 - fixtures
from thresher.core.types import DATAPOINT_ID_COLUMN, PATH_COLUMN
from thresher.interchange import rebatch

# The interop extras (hf, polars) are not in the lowest-versions run of the client tests.
datasets = pytest.importorskip("datasets")
pl = pytest.importorskip("polars")


def png(value: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((4, 4, 3), value, np.uint8)).save(out, format="PNG")
    return out.getvalue()


FILES = {f"img/{i}.png": png(i * 20) for i in range(6)}


@pytest.fixture
def ds(make_datasource):
    ds = make_datasource(FILES)
    ds.upload(pd.DataFrame({"path": list(FILES), "label": ["cat", "dog"] * 3, "rank": range(6)}))
    return ds


def test_a_result_is_an_arrow_stream_that_every_tool_reads_without_a_copy(ds):
    result = ds.select("label", "rank").order_by("rank").all()
    table = pa.table(result)
    assert table.column_names == [PATH_COLUMN, DATAPOINT_ID_COLUMN, "label", "rank"]
    # The very buffers of the result's table: pyarrow read the stream without copying.
    assert (
        table.column("rank").chunk(0).buffers()[1].address == result.arrow.column("rank").chunk(0).buffers()[1].address
    )
    assert result.to_arrow() is result.arrow
    assert pl.DataFrame(result)["rank"].to_list() == list(range(6))
    assert result.to_polars().columns == table.column_names
    if hasattr(pd.DataFrame, "from_arrow"):  # pandas 3 reads Arrow streams itself
        assert pd.DataFrame.from_arrow(result)["label"].tolist() == ["cat", "dog"] * 3
    assert result.to_pandas()["rank"].tolist() == list(range(6))
    r = result  # noqa: F841 - DuckDB's replacement scan finds the variable by name
    assert duckdb.sql("select label, count(*) from r group by label order by label").fetchall() == [
        ("cat", 3),
        ("dog", 3),
    ]


def test_a_view_runs_its_query_when_read(ds):
    cats = ds[ds["label"] == "cat"].select("label", "rank").order_by("rank")
    assert pa.table(cats)["rank"].to_pylist() == [0, 2, 4]
    assert pl.DataFrame(cats)["path"].to_list() == ["img/0.png", "img/2.png", "img/4.png"]
    assert cats.to_pandas()["rank"].tolist() == [0, 2, 4]
    assert cats.to_arrow().equals(cats.all().arrow)
    assert duckdb.sql("select sum(rank) from cats").fetchall() == [(6,)]
    ds.upload(pd.DataFrame({"path": ["img/1.png"], "label": ["cat"]}))  # a later read sees the change
    assert pa.table(cats)["rank"].to_pylist() == [0, 1, 2, 4]


def test_iter_batches_gives_batches_of_the_asked_size(ds):
    view = ds.order_by("rank")
    sizes = [batch.num_rows for batch in view.iter_batches(4)]
    assert sizes == [4, 2]
    rows = [value for batch in view.iter_batches(1) for value in batch.column("rank").to_pylist()]
    assert rows == list(range(6))
    assert [b.num_rows for b in view.all().iter_batches(5)] == [5, 1]
    with pytest.raises(ValueError, match="batch_size"):
        view.iter_batches(0)


def test_rebatch_regroups_across_and_within_batches():
    batches = [pa.record_batch({"x": list(range(start, start + n))}) for start, n in ((0, 3), (3, 1), (4, 7))]
    out = list(rebatch(batches, 4))
    assert [b.num_rows for b in out] == [4, 4, 3]
    assert [v for b in out for v in b.column("x").to_pylist()] == list(range(11))
    assert list(rebatch([], 4)) == []


def test_to_hf_dataset_has_the_metadata_and_the_files_as_images(ds):
    hf = ds.order_by("rank").to_hf_dataset()
    assert isinstance(hf, datasets.Dataset) and len(hf) == 6
    assert isinstance(hf.features["file"], datasets.Image)
    assert hf.features["rank"] == datasets.Value("int64")
    first = hf[0]
    assert first["path"] == "img/0.png" and first["label"] == "cat"
    assert np.asarray(first["file"]).tolist() == np.full((4, 4, 3), 0, np.uint8).tolist()
    plain = ds.order_by("rank").all().to_hf_dataset(image=False)
    assert plain.features["file"] == datasets.Value("string") and plain[5]["file"].endswith("img/5.png")
    assert "file" not in ds.all().to_hf_dataset(file_column=None).column_names


def test_to_hf_dataset_fetches_remote_files_into_the_download_cache(conn, s3_source, tmp_path):
    ds = s3_source({"a.txt": b"alpha", "b/c.txt": b"gamma"})
    hf = ds.order_by("path").to_hf_dataset(savedir=tmp_path / "cache", progress=False)
    assert hf.features["file"] == datasets.Value("string")
    assert [open(p, "rb").read() for p in hf["file"]] == [b"alpha", b"gamma"]
    assert all(p.startswith(str(tmp_path / "cache")) for p in hf["file"])

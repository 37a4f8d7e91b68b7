"""A query result as a Ray Dataset: one read task per Flight partition, the same rows and types."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from thresher.ray_engine.read import partitions_datasource


def _collected(ray, dataset) -> pa.Table:
    tables = ray.get(dataset.to_arrow_refs())
    table = pa.concat_tables(tables)
    return table.take(pc.sort_indices(table, [("datapoint_id", "ascending")]))


def test_a_parallel_read_equals_the_flight_result(ray_cluster, images):
    ds, _ = images(20)
    result = ds[ds["label"] < 2].all()
    assert partitions_datasource(ds.connection, ds.query_proto()).partitions == 3  # 20 rows, 7 a partition
    dataset = result.to_ray_dataset()
    got = _collected(ray_cluster, dataset)
    expected = result.arrow
    expected = expected.take(pc.sort_indices(expected, [("datapoint_id", "ascending")]))
    assert got.num_rows == len(result) == 14
    assert got.equals(expected.replace_schema_metadata(got.schema.metadata))
    # Thresher's field types travel in the Arrow field metadata of every block.
    assert [f.metadata for f in got.schema] == [f.metadata for f in expected.schema]
    assert dataset.count() == 14


def test_a_ray_read_of_a_result_sees_the_instant_the_result_was_read(ray_cluster, images):
    ds, _ = images(20)
    result = ds.all()
    ds.upload_metadata_from_dataframe(pd.DataFrame({"path": result.paths, "label": [99] * len(result)}))
    got = _collected(ray_cluster, result.to_ray_dataset())
    before = dict(zip(result.arrow.column("datapoint_id").to_pylist(), result.arrow.column("label").to_pylist()))
    assert dict(zip(got.column("datapoint_id").to_pylist(), got.column("label").to_pylist())) == before
    assert sorted(before.values()) == sorted(i % 3 for i in range(20))
    now = _collected(ray_cluster, ds.to_ray_dataset())
    assert set(now.column("label").to_pylist()) == {99}


def test_the_ray_modules_import_neither_ray_nor_torch_until_used():
    import subprocess
    import sys

    code = (
        "import sys, thresher, thresher.ray_engine.read, thresher.ray_engine.upload_tasks, thresher.ray_engine.export_tasks, "
        "thresher.ml.ray_embed; print(sorted(m for m in ('ray', 'torch') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "[]"


def test_without_ray_a_ray_call_names_the_extra_to_install():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['ray'] = None  # unimportable\n"
        "from thresher.core.errors import MissingExtraError\n"
        "from thresher.ray_engine import require_ray\n"
        "try:\n    require_ray()\nexcept MissingExtraError as error:\n    print(error)\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "thresher[ray]" in output.stdout

"""QueryResult.export(engine="ray"): shards written by Ray tasks, byte-identical to a local export, and
an export whose task dies mid-shard retried to exactly the right datapoints."""

from __future__ import annotations

import os
import pathlib

import pytest

from thresher import export as exporting
from thresher.bag import ShardedDatasetReader, decoders

# Keys that record when an export ran rather than what it holds.
_WHEN = ("as_of", "created_at")


def _files(root: pathlib.Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != exporting.MANIFEST
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        dict(columns=["label", "note", "x"]),
        dict(columns=["label"], formats={"file": "png", "label": "int"}, image_size=(4, 6)),
    ],
)
def test_a_ray_export_is_byte_identical_to_a_local_export(ray_cluster, images, tmp_path, options):
    ds, _ = images(20)
    result = ds.order_by("path").all()
    local = result.export(tmp_path / "local", shardlen=6, progress=False, **options)
    on_ray = result.export(tmp_path / "ray", shardlen=6, engine="ray", **options)

    written = _files(tmp_path / "ray")
    assert written == _files(tmp_path / "local")
    assert sorted({name.split("/")[0] for name in written}) == ["000000", "000001", "000002", "000003"]
    assert {k: v for k, v in on_ray.items() if k not in _WHEN} == {k: v for k, v in local.items() if k not in _WHEN}
    assert exporting.read_manifest(tmp_path / "ray") == on_ray and on_ray["complete"]


def test_a_ray_export_of_an_empty_result_is_one_empty_shard_like_a_local_one(ray_cluster, images, tmp_path):
    ds, _ = images(3)
    result = ds[ds["label"] > 5].all()
    result.export(tmp_path / "local", shardlen=4, progress=False)
    manifest = result.export(tmp_path / "ray", shardlen=4, engine="ray")
    assert _files(tmp_path / "ray") == _files(tmp_path / "local") and manifest["shards"] == 1


def test_a_task_killed_mid_export_is_retried_with_no_datapoint_missing_or_doubled(ray_cluster, images, tmp_path):
    ds, folder = images(20)
    result = ds.order_by("path").all()
    marker = tmp_path / "killed-once"

    def die_once_in_shard_two(shard: int, row: int) -> None:
        # Runs in the Ray worker: the first time shard 2 has 3 rows written, the worker process dies
        # (no exception, no cleanup), as a lost node's would; Ray runs the task again.
        if shard == 2 and row == 2 and not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)

    manifest = result.export(
        tmp_path / "out", columns=["label"], shardlen=6, engine="ray", on_record=die_once_in_shard_two
    )
    assert marker.exists()  # the kill happened
    assert manifest["complete"] and manifest["rows_done"] == 20 and manifest["shards"] == 4
    with ShardedDatasetReader(tmp_path / "out", decoders) as reader:
        assert len(reader) == 20
        points = [reader[i] for i in range(20)]
    assert [p["path"] for p in points] == result.paths
    assert all(p["file"] == (folder / p["path"]).read_bytes() for p in points)
    result.export(tmp_path / "local", columns=["label"], shardlen=6, progress=False)
    assert _files(tmp_path / "out") == _files(tmp_path / "local")


def test_an_interrupted_ray_export_resumes_writing_only_the_missing_shards(ray_cluster, images, tmp_path):
    ds, _ = images(20)
    result = ds.order_by("path").all()
    result.export(tmp_path / "out", columns=["label"], shardlen=6, progress=False)
    # As if shard 1 had never been finished and shard 3 never started.
    (tmp_path / "out" / "000001" / "spec.json").unlink()
    for path in (tmp_path / "out" / "000003").iterdir():
        path.unlink()
    (tmp_path / "out" / "000003").rmdir()
    before = {name: os.stat(tmp_path / "out" / name / "path.bag").st_mtime_ns for name in ("000000", "000002")}
    manifest = result.export(tmp_path / "out", columns=["label"], shardlen=6, engine="ray")
    assert manifest["complete"]
    assert {name: os.stat(tmp_path / "out" / name / "path.bag").st_mtime_ns for name in before} == before
    result.export(tmp_path / "local", columns=["label"], shardlen=6, progress=False)
    assert _files(tmp_path / "out") == _files(tmp_path / "local")

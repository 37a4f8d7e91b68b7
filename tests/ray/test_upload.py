"""ds.upload(ray_dataset): blocks staged from the workers, committed together or not at all; and the
staged-upload RPCs themselves (a block sent again replaces its copy; a commit with a block missing
writes nothing)."""

from __future__ import annotations

import os

import grpc
import pandas as pd
import pyarrow as pa
import pytest

from thresher.core.errors import FieldTypeMismatchError, UnknownPathsError
from thresher.v1 import metadata_service_pb2 as ms


def test_a_ray_dataset_is_uploaded_from_its_blocks_in_one_commit(ray_cluster, images):
    ds, _ = images(20)
    paths = ds.all().paths
    frame = pd.DataFrame(
        {"path": paths, "score": [float(i) for i in range(20)], "tag": [None if i < 10 else f"t{i}" for i in range(20)]}
    )  # all missing in early blocks
    dataset = ray_cluster.data.from_pandas(frame).repartition(4).materialize()
    assert dataset.num_blocks() == 4
    response = ds.upload(dataset, path_column="path")
    assert response.datapoints_written == 20
    result = ds.all()
    got = dict(zip(result.paths, zip(result.arrow.column("score").to_pylist(), result.arrow.column("tag").to_pylist())))
    assert got == {p: (float(i), None if i < 10 else f"t{i}") for i, p in enumerate(paths)}


def test_a_ray_upload_naming_unknown_paths_is_refused_unless_create_missing(ray_cluster, images, ray_services):
    ds, _ = images(4)
    paths = ds.all().paths
    frame = pd.DataFrame({"path": [*paths, "new/a.png", "new/b.png"], "score": [float(i) for i in range(6)]})
    dataset = ray_cluster.data.from_pandas(frame).repartition(3).materialize()
    with pytest.raises(UnknownPathsError, match="new/a.png"):
        ds.upload(dataset, path_column="path")
    result = ds.all()
    assert sorted(result.paths) == sorted(paths)  # nothing written, the known paths included
    assert "score" not in result.fields or set(result.arrow.column("score").to_pylist()) == {None}

    response = ds.upload(dataset, path_column="path", create_missing=True)
    assert (response.datapoints_written, response.datapoints_created) == (6, 2)
    result = ds.all()
    assert dict(zip(result.paths, result.arrow.column("score").to_pylist())) == dict(zip(frame.path, frame.score))


def test_a_ray_upload_with_one_bad_block_writes_nothing(ray_cluster, images, ray_services):
    ds, _ = images(20)
    ds.define_fields({"score": "float"})
    paths = ds.all().paths
    good = pa.table({"path": paths[:15], "score": [1.0] * 15})
    bad = pa.table({"path": paths[15:], "score": ["not a number"] * 5})
    dataset = ray_cluster.data.from_arrow([good, bad])
    with pytest.raises(FieldTypeMismatchError, match="score"):
        ds.upload(dataset, path_column="path")
    assert set(ds.all().arrow.column("score").to_pylist()) == {None}
    staging = ray_services.home + "/staging"
    # The session was aborted: no block is kept, only the marks that refuse late blocks of ended sessions.
    assert all(name.endswith(".ended") for name in os.listdir(staging))


def test_a_block_sent_again_replaces_its_copy_and_a_missing_block_commits_nothing(ray_services, images):
    ds, _ = images(6)
    conn, paths = ds.connection, ds.all().paths
    block = lambda rows, value: pa.table({"path": [paths[i] for i in rows], "score": [value] * len(rows)})  # noqa: E731
    conn.upsert_table(ds.id, block([0, 1, 2], 1.0), "path", staging_session="s1", block_index=0)
    conn.upsert_table(ds.id, block([3, 4, 5], 2.0), "path", staging_session="s1", block_index=2)
    commit = ms.CommitStagedUploadRequest(staging_session="s1", datasource_id=ds.id, block_count=3)
    with pytest.raises(Exception, match=r"missing \[1\]"):
        conn.call_metadata("CommitStagedUpload", commit)
    assert "score" not in ds.all().fields or set(ds.all().arrow.column("score").to_pylist()) == {None}

    # A retried writer sends block 0 again, with other rows: the copy replaces the first, nothing adds up.
    conn.upsert_table(ds.id, block([0, 1], 3.0), "path", staging_session="s1", block_index=0)
    conn.upsert_table(ds.id, block([2], 4.0), "path", staging_session="s1", block_index=1)
    response = conn.call_metadata("CommitStagedUpload", commit)
    assert response.datapoints_written == 6
    result = ds.all()
    assert dict(zip(result.paths, result.arrow.column("score").to_pylist())) == {
        paths[0]: 3.0,
        paths[1]: 3.0,
        paths[2]: 4.0,
        paths[3]: 2.0,
        paths[4]: 2.0,
        paths[5]: 2.0,
    }
    with pytest.raises(Exception, match="already committed or aborted"):  # committed sessions are gone
        conn.call_metadata("CommitStagedUpload", commit)


def test_staged_upload_requests_with_bad_arguments_are_refused(ray_services, images):
    ds, _ = images(2)
    stub = ds.connection.metadata
    for request, code in [
        (
            ms.CommitStagedUploadRequest(staging_session="../x", datasource_id=ds.id, block_count=1),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            ms.CommitStagedUploadRequest(staging_session="nope", datasource_id=ds.id, block_count=1),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            ms.CommitStagedUploadRequest(staging_session="nope", datasource_id=ds.id, block_count=0),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ]:
        with pytest.raises(grpc.RpcError) as caught:
            stub.CommitStagedUpload(request)
        assert caught.value.code() == code
    # A session staged for one datasource is not committed into another.
    other, _ = images(2)
    ds.connection.upsert_table(
        ds.id, pa.table({"path": ["img/00.png"], "v": [1]}), "path", staging_session="mine", block_index=0
    )
    with pytest.raises(grpc.RpcError, match=f"staged for datasource .*not {other.id}") as caught:
        stub.CommitStagedUpload(
            ms.CommitStagedUploadRequest(staging_session="mine", datasource_id=other.id, block_count=1)
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    dropped = stub.AbortStagedUpload(ms.AbortStagedUploadRequest(staging_session="mine", datasource_id=ds.id))
    assert dropped.blocks_dropped == 1
    request = ms.AbortStagedUploadRequest(staging_session="nope", datasource_id=ds.id)
    assert stub.AbortStagedUpload(request).blocks_dropped == 0


def test_a_block_arriving_after_its_session_ended_is_refused_and_not_kept(ray_services, images):
    from thresher.core.errors import ThresherError

    ds, _ = images(2)
    block = pa.table({"path": ["img/00.png"], "v": [1]})
    ds.connection.upsert_table(ds.id, block, "path", staging_session="late", block_index=0)
    ds.connection.call_metadata(
        "AbortStagedUpload", ms.AbortStagedUploadRequest(staging_session="late", datasource_id=ds.id)
    )
    with pytest.raises(ThresherError, match="already committed or aborted"):
        ds.connection.upsert_table(ds.id, block, "path", staging_session="late", block_index=1)
    assert not os.path.exists(os.path.join(ray_services.home, "staging", "late"))

"""Blob fields: stored by hash, fetched through the flight service into a disk cache processes share."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from thresher import blob_cache
from thresher.core.storage import BlobNotFoundError, InvalidStorageUriError

THUMBS = {f"img{i}.png": (b"thumb-%d-" % i) * (100 + i) for i in range(6)}


@pytest.fixture
def with_blobs(local_source):
    """A datasource whose ``thumb`` blob field holds THUMBS (img5 has none) and ``mask`` one shared blob."""
    ds = local_source({path: b"file" for path in THUMBS})
    frame = pd.DataFrame(
        {
            "path": list(THUMBS),
            "thumb": [v if p != "img5.png" else None for p, v in THUMBS.items()],
            "mask": [b"shared mask"] * len(THUMBS),
        }
    )
    ds.upload_metadata_from_dataframe(frame)
    return ds


def test_blob_fields_hold_hashes_and_get_blob_fetches_bytes(with_blobs):
    point = with_blobs.get_datapoint("img1.png")
    digest = hashlib.sha256(THUMBS["img1.png"]).hexdigest()
    assert point["thumb"] == digest
    assert point.get_blob("thumb") == THUMBS["img1.png"]
    assert blob_cache.cached_path(digest).read_bytes() == THUMBS["img1.png"]
    assert point["thumb"] == digest  # not stored unless asked
    assert point.get_blob("thumb", store_value=True) == THUMBS["img1.png"] and point["thumb"] == THUMBS["img1.png"]
    assert with_blobs.get_datapoint("img5.png").get_blob("thumb") is None


def test_get_blob_without_the_disk_cache(with_blobs):
    point = with_blobs.get_datapoint("img2.png")
    assert point.get_blob("thumb", cache_on_disk=False) == THUMBS["img2.png"]
    assert not blob_cache.cached_path(point["thumb"]).exists()


def test_get_blob_fields_into_files_or_memory(with_blobs):
    result = with_blobs.all()
    assert result.get_blob_fields(progress=False) is result  # every blob field
    by_path = {point.path: point for point in result}
    thumb = by_path["img3.png"]["thumb"]
    assert thumb == blob_cache.cached_path(hashlib.sha256(THUMBS["img3.png"]).hexdigest())
    assert thumb.read_bytes() == THUMBS["img3.png"] and by_path["img3.png"].get_blob("thumb") == THUMBS["img3.png"]
    assert by_path["img5.png"]["thumb"] is None and by_path["img0.png"]["mask"].read_bytes() == b"shared mask"
    in_memory = with_blobs.all().get_blob_fields("thumb", load_into_memory=True, progress=False)
    assert {p.path: p["thumb"] for p in in_memory} == {p: (v if p != "img5.png" else None) for p, v in THUMBS.items()}
    assert all(len(h) == 64 for h in in_memory.dataframe["mask"])  # the table keeps the hashes
    with pytest.raises(ValueError, match="'size' is not a blob field"):
        with_blobs.all().get_blob_fields("size")


def test_missing_blob_is_named_and_nothing_is_cached(with_blobs, local_services):
    point = with_blobs.get_datapoint("img4.png")
    digest = point["thumb"]
    os.unlink(os.path.join(local_services.home, "blobs", digest[:2], digest))
    with pytest.raises(BlobNotFoundError, match=f"no blob {digest}"):
        point.get_blob("thumb")
    folder = blob_cache.cached_path(digest).parent
    assert not folder.exists() or not os.listdir(folder)  # neither the blob nor a temporary file
    with pytest.raises(InvalidStorageUriError, match="not a blob hash"):
        blob_cache.fetch(with_blobs.connection, "f" * 63, datasource_id=with_blobs.id)


def test_flight_refuses_a_malformed_hash(with_blobs):
    from thresher.core.errors import InvalidArgumentError
    from thresher.flight_bytes import blob_chunks

    with pytest.raises(InvalidArgumentError, match="not a blob hash"):
        list(blob_chunks(with_blobs.connection, "../../etc/passwd", with_blobs.id))


_FETCHER = """
import json, sys
from thresher import blob_cache
from thresher.connection import Connection
connection = Connection(sys.argv[1], sys.argv[2])
digests = json.loads(sys.argv[3])
paths = blob_cache.cache_many(connection, digests, threads=4, progress=False, datasource_id=int(sys.argv[4]))
print(json.dumps({d: __import__("hashlib").sha256(paths[d].read_bytes()).hexdigest() for d in digests}))
"""


@pytest.mark.slow(reason="several processes")
def test_the_cache_is_shared_safely_by_processes(local_source, tmp_path):
    ds = local_source({f"f{i}.bin": b"x" for i in range(40)})
    values = [os.urandom(200_000) for _ in range(40)]
    ds.upload_metadata_from_dataframe(pd.DataFrame({"path": [f"f{i}.bin" for i in range(40)], "payload": values}))
    digests = [hashlib.sha256(v).hexdigest() for v in values]
    env = {**os.environ, "THRESHER_DOWNLOAD_DIR": str(tmp_path / "shared")}
    args = [
        sys.executable,
        "-c",
        _FETCHER,
        ds.connection.metadata_address,
        ds.connection.flight_address,
        json.dumps(digests),
        str(ds.id),
    ]
    processes = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    outputs = [process.communicate(timeout=120) for process in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err.decode()
        assert json.loads(out) == {d: d for d in digests}  # every process read every blob whole
    cache = tmp_path / "shared" / "blobs-cache"
    files = sorted(p.name for p in cache.rglob("*") if p.is_file())
    assert files == sorted(digests)  # one file per blob, no temporary files left

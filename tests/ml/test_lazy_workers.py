"""DataLoader and PyDataset workers fetch files themselves, lazily, a bounded number ahead of training.

Files of an S3 source come through the flight service into the download cache; what is in the cache
folder is what was fetched (each file lands whole, by rename), so counting it counts real fetches.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from tests.downloads.conftest import indexed
from tests.ml.conftest import image_bytes
from thresher.core.storage import open_storage
from thresher.v1 import metadata_service_pb2 as ms

WORKERS, PREFETCH, BATCH = 2, 2, 2
# Batches a DataLoader hands its workers before the first one comes back, plus the one it hands out
# when it does: the files fetched before training starts can be no more than these batches' files.
AHEAD = (WORKERS * PREFETCH + 1) * BATCH


def s3_pngs(conn, namespace, bucket, count: int):
    storage = open_storage(f"s3://{bucket}/lazy{count}")
    paths = [f"img/{i:04d}.png" for i in range(count)]
    pixels = image_bytes(np.zeros((2, 2, 3), np.uint8))
    for path in paths:
        storage.write(path, pixels)
    return indexed(conn, namespace, f"s3://{bucket}/lazy{count}", paths, extra={"label": [0] * count})


def fetched(folder) -> int:
    return sum(1 for path in folder.rglob("*.png") if path.is_file())


@pytest.mark.slow
def test_torch_workers_fetch_a_bounded_number_of_files_before_the_first_batch(conn, namespace, s3_bucket, tmp_path):
    counts = {}
    for count in (30, 120):
        ds = s3_pngs(conn, namespace, s3_bucket, count)
        savedir = tmp_path / str(count)
        loader = (
            ds.order_by("path")
            .all()
            .as_ml_dataloader(
                "torch",
                metadata_columns=["label"],
                savedir=savedir,
                progress=False,
                batch_size=BATCH,
                num_workers=WORKERS,
                prefetch_factor=PREFETCH,
            )
        )
        assert fetched(savedir) == 0  # nothing up front
        batches = iter(loader)
        images, labels = next(batches)
        assert images.shape == (BATCH, 2, 2, 3) and labels.tolist() == [0] * BATCH
        del batches  # stops the workers; whatever they fetched is in the cache now
        counts[count] = fetched(savedir)
    assert all(BATCH <= n <= AHEAD for n in counts.values()), counts


def test_pydataset_batches_fetch_only_their_own_files(conn, namespace, s3_bucket, tmp_path):
    ds = s3_pngs(conn, namespace, s3_bucket, 20)
    batches = (
        ds.order_by("path")
        .all()
        .as_ml_dataloader("tensorflow", metadata_columns=["label"], savedir=tmp_path, progress=False, batch_size=4)
    )
    assert fetched(tmp_path) == 0
    images, labels = batches[2]
    assert images.shape == (4, 2, 2, 3) and labels.tolist() == [0] * 4
    assert sorted(p.name for p in tmp_path.rglob("*.png")) == [f"{i:04d}.png" for i in range(8, 12)]


def test_tf_data_workers_fetch_a_bounded_number_of_files_ahead(conn, namespace, s3_bucket, tmp_path):
    ds = s3_pngs(conn, namespace, s3_bucket, 40)
    dataset = (
        ds.order_by("path")
        .all()
        .as_ml_dataset("tensorflow", savedir=tmp_path, progress=False, num_workers=2, read_ahead=4)
    )
    assert fetched(tmp_path) == 1  # the first item, which gave the output signature
    elements = iter(dataset)
    first = next(elements)
    assert tuple(first.shape) == (2, 2, 3)
    # The item read, the read-ahead window refilled after it, and at most one more asked for by tf.data.
    assert 1 <= fetched(tmp_path) <= 1 + 4 + 1
    assert sum(1 for _ in elements) == 39 and fetched(tmp_path) == 40


def test_a_pickled_connection_dials_afresh_with_the_same_settings(conn):
    conn.call_metadata("ListNamespaces", ms.ListNamespacesRequest(), idempotent=True)  # channels open
    copy = pickle.loads(pickle.dumps(conn))
    assert (copy.metadata_address, copy.flight_address) == (conn.metadata_address, conn.flight_address)
    # Pickled as settings only: channels are the process's (transport.shared), so a worker process
    # that unpickles it dials its own; in this process the copy reuses this process's channel.
    assert copy._settings == conn._settings and "channel" not in pickle.dumps(conn).decode("latin-1")
    assert copy.call_metadata("ListNamespaces", ms.ListNamespacesRequest(), idempotent=True) is not None

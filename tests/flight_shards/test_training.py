"""From query to training: export a datasource, register it, and train under two gloo ranks through flight."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import thresher
from thresher.bag import ShardedDatasetReader, decoders
from thresher.loader import Loader

from .train_job import run_rank

torch_mp = pytest.importorskip("torch.multiprocessing")
BATCH = 4


@pytest.mark.slow  # two torch.distributed processes, each importing torch
def test_two_ranks_train_an_epoch_through_flight(local_services, flight_pair, namespace, tmp_path):
    conn = local_services.connect()
    folder = tmp_path / "source"
    folder.mkdir()
    paths = [f"f{i:02}.bin" for i in range(22)]
    for i, path in enumerate(paths):
        (folder / path).write_bytes(bytes([i]) * (i + 1))
    ds = thresher.datasources.get_or_create(namespace, "train", folder, connection=conn)
    ds = ds.wait_until_ready(timeout=60, progress=False)
    ds.upload_metadata_from_dataframe(
        pd.DataFrame(
            {
                "path": paths,
                "label": [i % 3 for i in range(22)],
                "x0": [i / 10 for i in range(22)],
                "x1": [(i % 5) / 5 for i in range(22)],
            }
        )
    )
    target = tmp_path / "export"
    ds.order_by("path").all().export(
        target,
        columns=["label", "x0", "x1"],
        shardlen=BATCH,
        formats={"label": "int", "x0": "f64", "x1": "f64"},
        progress=False,
    )
    thresher.datasets.register_export(namespace, "train-bag", target, connection=conn)

    out_file = tmp_path / "result.json"
    args = (
        2,
        str(tmp_path / "init"),
        str(out_file),
        f"{namespace}/train-bag",
        local_services.metadata_address,
        f"127.0.0.1:{flight_pair[0].port}",
        BATCH,
    )
    torch_mp.spawn(run_rank, args=args, nprocs=2, join=True)
    ranks = json.loads(out_file.read_text())

    for rank in ranks:
        local = Loader(ShardedDatasetReader(target, decoders), BATCH, workers=0, rank=rank["rank"], world_size=2)
        assert rank["paths"] == [list(batch["path"]) for batch in local]
        # shardlen == batch: each rank fetched its own shards and no others.
        assert rank["shards"] == list(range(rank["rank"], 6, 2))
    assert len(ranks[0]["losses"]) == len(ranks[1]["losses"]) == 3

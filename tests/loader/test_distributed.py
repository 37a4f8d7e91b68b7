"""Two ranks under torch.distributed (gloo, CPU) share the single-process order."""

from __future__ import annotations

import json

import pytest

from thresher.loader import Loader
from thresher.sources import Epochs

from .distributed_job import labels, run_rank
from .fakes import Points

torch_mp = pytest.importorskip("torch.multiprocessing")


@pytest.mark.slow  # two torch.distributed processes, each importing torch
def test_two_ranks_under_torch_distributed(tmp_path):
    out_file = tmp_path / "result.json"
    torch_mp.spawn(run_rank, args=(2, str(tmp_path / "init"), str(out_file)), nprocs=2, join=True)
    ranks = json.loads(out_file.read_text())
    assert [(r["rank"], r["world_size"]) for r in ranks] == [(0, 2), (1, 2)]

    single = labels(Loader(Epochs(Points(23), seed=4), 4, workers=0), 16)
    # Rank r's batch k is global batch 2k + r: interleaved, the ranks are the single order.
    first = [batch for pair in zip(ranks[0]["first"], ranks[1]["first"]) for batch in pair]
    assert first == single[:10]
    # Each rank's own state resumes the whole job where it stopped.
    assert ranks[0]["state"] == ranks[1]["state"] == {"step": 40, "epoch": 0}
    resumed = [batch for pair in zip(ranks[0]["resumed"], ranks[1]["resumed"]) for batch in pair]
    assert resumed == single[10:16]
    # A finite source: the same number of batches on every rank.
    assert len(ranks[0]["finite"]) == len(ranks[1]["finite"]) == 3
    assert ranks[0]["finite"][0] == [0, 1, 2, 3] and ranks[1]["finite"][0] == [4, 5, 6, 7]

"""The loader's state inside a torch.distributed.checkpoint, with two gloo ranks."""

from __future__ import annotations

import json

import pytest

from .checkpoint_job import run_rank

torch_mp = pytest.importorskip("torch.multiprocessing")


@pytest.mark.slow  # two torch.distributed processes, each importing torch
def test_two_ranks_resume_from_a_distributed_checkpoint_to_the_same_batches(tmp_path):
    out_file = tmp_path / "result.json"
    args = (2, str(tmp_path / "init"), str(tmp_path / "checkpoint"), str(out_file))
    torch_mp.spawn(run_rank, args=args, nprocs=2, join=True)
    ranks = json.loads(out_file.read_text())
    for rank in ranks:
        assert rank["resumed"] == rank["next"]
        assert rank["state"] == {"step": 3 * 4 * 2, "epoch": 0}
        assert rank["model_restored"]
    # The ranks read different batches, so the resume is per rank, not one rank's copy.
    assert ranks[0]["next"] != ranks[1]["next"]

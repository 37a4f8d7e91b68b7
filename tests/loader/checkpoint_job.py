"""One rank of the torch.distributed.checkpoint test job (run by torch.multiprocessing.spawn)."""

from __future__ import annotations

import json

from thresher.loader import Loader
from thresher.sources import Epochs

from .fakes import Points


def labels(loader: Loader, n: int) -> list[list[int]]:
    iterator = iter(loader)
    return [next(iterator)["label"].tolist() for _ in range(n)]


def run_rank(rank: int, world_size: int, init_file: str, checkpoint: str, out_file: str) -> None:
    import torch
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        source = Epochs(Points(23), seed=4)
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        result = {"rank": rank}
        with Loader(source, 4, workers=1) as loader:
            result["before"] = labels(loader, 3)
            # The loader's state goes into the same checkpoint as the model, mid-epoch.
            dcp.save({"model": model.state_dict(), "loader": loader}, checkpoint_id=checkpoint)
            result["next"] = labels(loader, 3)
        weights = model.weight.detach().clone()
        with torch.no_grad():
            model.weight.zero_()

        with Loader(source, 4, workers=1) as resumed:
            state = {"model": model.state_dict(), "loader": resumed}
            dcp.load(state, checkpoint_id=checkpoint)
            model.load_state_dict(state["model"])
            result["state"] = resumed.state_dict()
            result["resumed"] = labels(resumed, 3)
        result["model_restored"] = bool(torch.equal(model.weight, weights))
        gathered = [None] * world_size
        dist.all_gather_object(gathered, result)
        if rank == 0:
            with open(out_file, "w") as f:
                json.dump(gathered, f)
    finally:
        dist.destroy_process_group()

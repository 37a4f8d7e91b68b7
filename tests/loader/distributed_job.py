"""One rank of the torch.distributed test job (run by torch.multiprocessing.spawn)."""

from __future__ import annotations

import json

from thresher.loader import Loader
from thresher.sources import Epochs

from .fakes import Points


def labels(loader: Loader, n: int | None = None) -> list[list[int]]:
    iterator = iter(loader)
    batches = iterator if n is None else (next(iterator) for _ in range(n))
    return [batch["label"].tolist() for batch in batches]


def run_rank(rank: int, world_size: int, init_file: str, out_file: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        source = Epochs(Points(23), seed=4)
        # No rank or world_size given: the loader takes them from torch.distributed.
        with Loader(source, 4, workers=2) as loader:
            result = {"rank": loader.rank, "world_size": loader.world_size}
            result["first"] = labels(loader, 5)
            result["state"] = loader.save()
        with Loader(source, 4, workers=0) as resumed:
            resumed.load(result["state"])
            result["resumed"] = labels(resumed, 3)
        result["finite"] = labels(Loader(Points(23), 4, workers=0))
        gathered = [None] * world_size
        dist.all_gather_object(gathered, result)
        if rank == 0:
            with open(out_file, "w") as f:
                json.dump(gathered, f)
    finally:
        dist.destroy_process_group()

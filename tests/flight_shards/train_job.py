"""One rank of the flight training job (run by torch.multiprocessing.spawn): a tiny model, one epoch,
batches read through flight by a Remote source."""

from __future__ import annotations

import json


def run_rank(
    rank: int, world_size: int, init_file: str, out_file: str, dataset: str, metadata: str, flight: str, batch: int
) -> None:
    import torch
    import torch.distributed as dist

    from thresher.connection import Connection
    from thresher.loader import Loader
    from thresher.sources import Remote

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 3)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        remote = Remote(dataset, connection=Connection(metadata, flight), batch=batch, rank=rank, world_size=world_size)
        paths, losses = [], []
        # No rank given: the loader takes it from torch.distributed, as the Remote's plan assumed.
        with Loader(remote, batch, workers=2, mode="thread") as loader:
            for step in loader:
                features = torch.tensor(list(zip(step["x0"], step["x1"])), dtype=torch.float32)
                loss = torch.nn.functional.cross_entropy(model(features), torch.as_tensor(step["label"]))
                optimizer.zero_grad()
                loss.backward()
                for parameter in model.parameters():  # average the gradients over the ranks
                    dist.all_reduce(parameter.grad)
                    parameter.grad /= world_size
                optimizer.step()
                paths.append(list(step["path"]))
                losses.append(float(loss))
        result = {
            "rank": rank,
            "paths": paths,
            "losses": losses,
            "shards": sorted({piece[0] for piece, _ in remote.fetched}),
        }
        gathered = [None] * world_size
        dist.all_gather_object(gathered, result)
        if rank == 0:
            with open(out_file, "w") as f:
                json.dump(gathered, f)
    finally:
        dist.destroy_process_group()

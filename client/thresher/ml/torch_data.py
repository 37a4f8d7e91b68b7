"""The PyTorch flavor: a map-style ``torch.utils.data.Dataset`` of a query result, and its DataLoader."""

from __future__ import annotations

import multiprocessing
from typing import Any

import numpy as np
import torch
import torch.utils.data

from thresher.ml.items import ItemBuilder


def to_torch(value: Any) -> Any:
    """numpy arrays (in tuples, lists and dicts too) as tensors; strings and other values unchanged."""
    if isinstance(value, np.ndarray) and value.dtype.kind not in "USO":
        # from_numpy shares memory; read-only arrays are copied as torch tensors are always writable.
        return torch.from_numpy(value if value.flags.writeable else value.copy())
    if isinstance(value, np.str_):
        return str(value)
    if isinstance(value, tuple | list):
        return type(value)(to_torch(v) for v in value)
    if isinstance(value, dict):
        return {key: to_torch(v) for key, v in value.items()}
    return value


class TorchDataset(torch.utils.data.Dataset[Any]):
    """Item ``i`` is datapoint ``i`` of the result: its columns as tensors (see ``thresher.ml.items``)."""

    def __init__(self, items: ItemBuilder) -> None:
        self.thresher_items = items

    def __len__(self) -> int:
        return len(self.thresher_items)

    def __getitem__(self, index: int) -> Any:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        return to_torch(self.thresher_items(index % len(self)))

    def __getitems__(self, indices: list[int]) -> list[Any]:
        """The items of one batch (what a DataLoader asks for), their files fetched together."""
        for index in indices:
            if not -len(self) <= index < len(self):
                raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        return [to_torch(item) for item in self.thresher_items.batch([index % len(self) for index in indices])]

    def fetch_all(self, progress: bool = True) -> None:
        """Fetches every file into the cache now (what the ``preload`` strategy does up front)."""
        files = self.thresher_items.files
        if files is not None:
            files.fetch_all(self.thresher_items.keys(), progress)
            files.wait()


def detection_collate(batch: list[Any]) -> tuple[Any, ...]:
    """A batch as a tuple of per-column lists (images of different sizes, targets with different object
    counts), which is what torchvision's detection models take: ``collate_fn=detection_collate``."""
    return tuple(zip(*batch)) if isinstance(batch[0], tuple) else tuple(batch)


def data_loader(dataset: TorchDataset, **options: Any) -> torch.utils.data.DataLoader[Any]:
    """A DataLoader over ``dataset`` taking DataLoader's own arguments.

    With ``num_workers`` > 0 each worker process opens its own connection to the services and fetches
    the files of the batches it is given into the shared cache: nothing is fetched up front, and at
    most ``num_workers * prefetch_factor`` batches' files are fetched ahead of training. Workers
    start from a fork server unless ``multiprocessing_context`` says otherwise: a plain fork copies a
    process whose gRPC, Arrow and DuckDB threads may hold locks at that instant, and the child can
    crash on them (it did, reading local files, in a process that also hosted the services).
    """
    if options.get("num_workers", 0) > 0 and "multiprocessing_context" not in options:
        context = multiprocessing.get_context("forkserver")
        # Imported once in the fork server, so each epoch's workers start with torch loaded.
        context.set_forkserver_preload([__name__])
        options["multiprocessing_context"] = context
    return torch.utils.data.DataLoader(dataset, **options)

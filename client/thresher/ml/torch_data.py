"""The PyTorch flavor: a map-style ``torch.utils.data.Dataset`` of a query result, and its DataLoader."""

from __future__ import annotations

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


class TorchDataset(torch.utils.data.Dataset):
    """Item ``i`` is datapoint ``i`` of the result: its columns as tensors (see ``thresher.ml.items``)."""

    def __init__(self, items: ItemBuilder) -> None:
        self.thresher_items = items

    def __len__(self) -> int:
        return len(self.thresher_items)

    def __getitem__(self, index: int) -> Any:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        return to_torch(self.thresher_items(index % len(self)))

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


def data_loader(dataset: TorchDataset, **options: Any) -> torch.utils.data.DataLoader:
    """A DataLoader over ``dataset`` taking DataLoader's own arguments.

    Worker processes cannot use this process's service connection, so with ``num_workers`` > 0 the
    files are fetched here first (read-in-place local files need nothing) and workers read the cache.
    """
    files = dataset.thresher_items.files
    if options.get("num_workers", 0) > 0 and files is not None:
        dataset.fetch_all()
    return torch.utils.data.DataLoader(dataset, **options)

"""``as_ml_dataset`` and ``as_ml_dataloader``: a query result as a PyTorch or TensorFlow dataset.

The framework is imported only here, when a dataset of its flavor is built. Options that shape the
items (columns, tensorizers) and the file cache (strategy, savedir) are shared by both flavors; every
other keyword goes to the framework's loader (``torch.utils.data.DataLoader`` or the Keras
``PyDataset``: batch_size, shuffle, workers, ...).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from thresher.core.errors import InvalidArgumentError
from thresher.ml.file_cache import FileStore
from thresher.ml.items import ItemBuilder, TensorizerSpec

FLAVORS = ("torch", "tensorflow")
_ALIASES = {"torch": "torch", "pytorch": "torch", "tensorflow": "tensorflow", "tf": "tensorflow", "keras": "tensorflow"}
DATASET_OPTIONS = ("metadata_columns", "file_columns", "tensorizers", "strategy", "savedir", "progress", "class_maps")


def flavor_of(flavor: str) -> str:
    """``torch`` or ``tensorflow`` for a flavor name (``pytorch``, ``tf`` and ``keras`` are accepted too)."""
    try:
        return _ALIASES[flavor.lower()]
    except (KeyError, AttributeError):
        raise InvalidArgumentError(f"unknown ML flavor {flavor!r}: use one of {FLAVORS}") from None


def build_items(
    result: Any,
    datasource: Any,
    *,
    metadata_columns: Sequence[str] = (),
    file_columns: Sequence[str] | None = None,
    tensorizers: TensorizerSpec = "auto",
    strategy: str = "lazy",
    savedir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    class_maps: dict[str, dict[str, int]] | None = None,
) -> ItemBuilder:
    """The items of ``result`` with their file store set up by ``strategy`` (see ``thresher.ml.file_cache``)."""
    if isinstance(metadata_columns, str):
        metadata_columns = [metadata_columns]
    if isinstance(file_columns, str):
        file_columns = [file_columns]
    items = ItemBuilder(result, None, file_columns, metadata_columns, tensorizers, class_maps)
    if any(column.is_file for column in items.columns):
        items.files = FileStore(datasource, items.keys(), strategy, savedir, progress)
    elif strategy not in ("lazy", "background", "preload"):
        raise InvalidArgumentError(f"strategy must be 'lazy', 'background' or 'preload', not {strategy!r}")
    return items


def as_ml_dataset(result: Any, datasource: Any, flavor: str, **options: Any) -> Any:
    """A ``torch.utils.data.Dataset`` or a ``tf.data.Dataset`` of ``result``'s items.

    ``options``: ``metadata_columns``, ``file_columns``, ``tensorizers``, ``strategy``, ``savedir``,
    ``progress``; for tensorflow also ``output_signature`` (default: from the first item, file
    columns with every dimension variable but the last) and ``num_workers``/``read_ahead`` (threads
    that build items, fetching their files, a bounded number ahead of the one read).
    """
    flavor = flavor_of(flavor)
    extra = {key: options.pop(key) for key in list(options) if key not in DATASET_OPTIONS}
    items = build_items(result, datasource, **options)
    if flavor == "torch":
        if extra:
            raise InvalidArgumentError(f"unexpected options for a torch dataset: {sorted(extra)}")
        from thresher.ml.torch_data import TorchDataset

        return TorchDataset(items)
    from thresher.ml.tf_data import tf_dataset

    return tf_dataset(items, **extra)


def as_ml_dataloader(result: Any, datasource: Any, flavor_or_dataset: Any, **options: Any) -> Any:
    """A ``torch.utils.data.DataLoader`` or a Keras ``PyDataset`` of ``result``'s items.

    ``flavor_or_dataset`` is a flavor name or a dataset from ``as_ml_dataset``. Dataset options (see
    ``as_ml_dataset``) build the dataset; the rest go to the loader: DataLoader's arguments for torch,
    ``batch_size``, ``shuffle``, ``seed`` and PyDataset's ``workers``/``use_multiprocessing``/
    ``max_queue_size`` for tensorflow.
    """
    dataset_options = {key: options.pop(key) for key in list(options) if key in DATASET_OPTIONS}
    if isinstance(flavor_or_dataset, str):
        flavor = flavor_of(flavor_or_dataset)
        items = build_items(result, datasource, **dataset_options)
    else:
        if dataset_options:
            raise InvalidArgumentError(f"{sorted(dataset_options)} shape a dataset; this one is built already")
        built = getattr(flavor_or_dataset, "thresher_items", None)
        if not isinstance(built, ItemBuilder):
            raise InvalidArgumentError(
                "as_ml_dataloader takes 'torch', 'tensorflow' or a dataset made by "
                f"as_ml_dataset, not {type(flavor_or_dataset).__name__}"
            )
        items = built
        flavor = "torch" if type(flavor_or_dataset).__module__ == "thresher.ml.torch_data" else "tensorflow"
    if flavor == "torch":
        from thresher.ml.torch_data import TorchDataset, data_loader

        dataset = flavor_or_dataset if not isinstance(flavor_or_dataset, str) else TorchDataset(items)
        return data_loader(dataset, **options)
    from thresher.ml.tf_data import ItemBatches

    return ItemBatches(items, **options)

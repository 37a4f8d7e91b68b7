"""The TensorFlow flavor: a ``tf.data.Dataset`` of a query result, and a Keras ``PyDataset`` of batches."""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import math
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from thresher.ml.items import ItemBuilder


def spec_of(value: Any, variable: bool) -> Any:
    """The ``tf.TensorSpec`` (nested like ``value``) that fits ``value``; ``variable`` leaves every
    dimension but the last unknown, as files of one kind differ in size (images, audio, video).
    Annotation targets (dicts of arrays) always have a variable number of objects."""
    if isinstance(value, dict):
        return {key: spec_of(v, True) for key, v in value.items()}
    if isinstance(value, tuple | list):
        return tuple(spec_of(v, variable) for v in value)
    array = np.asarray(value)
    dtype = tf.string if array.dtype.kind in "US" else tf.as_dtype(array.dtype)
    shape = list(array.shape)
    if variable and shape:
        shape = [None] * (len(shape) - 1) + [shape[-1]] if len(shape) > 1 else [None]
    return tf.TensorSpec(shape=shape, dtype=dtype)


def default_signature(items: ItemBuilder) -> Any:
    """The signature of ``items`` read off the first item (file columns' sizes left variable)."""
    if not len(items):
        raise ValueError("an empty result has no first item to read an output_signature from: pass one")
    first = items(0)
    if items.whole_item is not None:
        return spec_of(first, variable=False)
    if len(items.columns) == 1:
        return spec_of(first, items.columns[0].is_file)
    return tuple(spec_of(value, column.is_file) for value, column in zip(first, items.columns))


def tf_dataset(
    items: ItemBuilder, output_signature: Any = None, num_workers: int = 0, read_ahead: int | None = None
) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` yielding the items in result order; ``.thresher_items`` keeps the builder.

    With ``num_workers`` > 0, that many threads build items (fetching their files) ahead of the one
    being read, at most ``read_ahead`` (default twice the workers) at a time: nothing is fetched up front.
    """
    if num_workers < 0 or (read_ahead is not None and read_ahead < 1):
        raise ValueError(f"num_workers must be >= 0 and read_ahead >= 1, not {num_workers} and {read_ahead}")
    signature = output_signature if output_signature is not None else default_signature(items)

    def generate() -> Iterator[Any]:
        if num_workers == 0:
            yield from (items(row) for row in range(len(items)))
            return
        rows = iter(range(len(items)))
        with concurrent.futures.ThreadPoolExecutor(num_workers, thread_name_prefix="thresher-tf") as pool:
            pending = collections.deque(
                pool.submit(items, row) for row in itertools.islice(rows, read_ahead or 2 * num_workers)
            )
            while pending:
                item = pending.popleft().result()
                row = next(rows, None)
                if row is not None:
                    pending.append(pool.submit(items, row))
                yield item

    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    dataset.thresher_items = items  # lets as_ml_dataloader turn this dataset into batches
    return dataset


def collate(batch: list[Any]) -> Any:
    """Items stacked column by column into arrays with a leading batch dimension; annotation targets
    (dicts of per-object arrays) become ragged tensors, one row per item."""
    if isinstance(batch[0], tuple | list):
        return tuple(collate([item[k] for item in batch]) for k in range(len(batch[0])))
    if isinstance(batch[0], dict):
        return {
            key: tf.RaggedTensor.from_row_lengths(
                np.concatenate([item[key] for item in batch]), [len(item[key]) for item in batch]
            )
            for key in batch[0]
        }
    return np.stack([np.asarray(item) for item in batch])


class ItemBatches(keras.utils.PyDataset):  # type: ignore[misc]  # keras has no type information
    """Batches of items for ``model.fit``: ``len`` is ceil(items / batch_size), the last one partial.

    ``shuffle`` reorders the items each epoch (from ``seed``, so runs repeat). Items are tuples that
    Keras reads as (inputs, targets[, sample weights]). ``workers``, ``use_multiprocessing`` and
    ``max_queue_size`` go to PyDataset: each worker (thread, or process with its own connection to the
    services) fetches the files of the batch it builds, so at most about ``max_queue_size`` batches'
    files are fetched ahead of training.
    """

    def __init__(
        self, items: ItemBuilder, batch_size: int = 32, shuffle: bool = False, seed: int | None = None, **options: Any
    ) -> None:
        super().__init__(**options)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.thresher_items = items
        self.batch_size = batch_size
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(items))
        if shuffle:
            self._rng.shuffle(self._order)

    def __len__(self) -> int:
        return math.ceil(len(self._order) / self.batch_size)

    def __getitem__(self, index: int) -> Any:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range for {len(self)} batches")
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        return collate(self.thresher_items.batch([int(row) for row in rows]))

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._rng.shuffle(self._order)

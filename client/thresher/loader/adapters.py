"""Views of a loader for torch and TensorFlow; each framework is imported only when asked for."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from thresher.loader.loader import Loader
from thresher.loader.loader_errors import LoaderError

if TYPE_CHECKING:
    import tensorflow as tf
    import torch


@functools.cache
def _torch_view_class() -> Callable[[Loader], torch.utils.data.IterableDataset[dict[str, Any]]]:
    import torch

    class TorchView(torch.utils.data.IterableDataset[dict[str, Any]]):
        """The loader's batches with arrays as tensors (sharing memory, no copy)."""

        def __init__(self, loader: Loader) -> None:
            super().__init__()
            self.loader = loader

        def __iter__(self) -> Iterator[dict[str, Any]]:
            for batch in self.loader:
                yield {key: _to_tensor(torch, value) for key, value in batch.items()}

        def __len__(self) -> int:
            return len(self.loader)

        def state_dict(self) -> dict[str, int]:
            """The loader's state: torchdata's `StatefulDataLoader` saves it with its own."""
            return self.loader.state_dict()

        def load_state_dict(self, state_dict: dict[str, int]) -> None:
            self.loader.load_state_dict(state_dict)

        def __reduce__(self) -> NoReturn:
            raise LoaderError(
                "a loader view cannot be sent to DataLoader workers: the loader has its own; "
                "use DataLoader(view, batch_size=None, num_workers=0) or iterate the view"
            )

    return TorchView


def _to_tensor(torch: Any, value: Any) -> Any:
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
        return torch.from_numpy(value)
    return value


def to_torch(loader: Loader) -> torch.utils.data.IterableDataset[dict[str, Any]]:
    """A `torch.utils.data.IterableDataset` over the loader's batches, arrays as tensors.

    Iterate it directly, or wrap it as `DataLoader(view, batch_size=None)`: the batching and the
    workers are the loader's.
    """
    return _torch_view_class()(loader)


def tensorflow_signature(loader: Loader) -> dict[str, Any]:
    """The `output_signature` of the loader's batches, from `loader.spec`.

    Numeric keys become `TensorSpec((batch, *shape), dtype)`, string and bytes keys
    `TensorSpec((batch,), tf.string)`; the batch dimension is None when a short last batch can
    occur. Keys of other kinds (ragged arrays, nested values) need an explicit signature.
    """
    import tensorflow as tf

    endless = loader._partition.size is None  # noqa: SLF001 - same package
    rows = loader.batch if endless or loader.drop_remainder else None
    signature: dict[str, Any] = {}
    for key, (dtype, shape) in loader.spec.items():
        if dtype.kind in "biufc":
            signature[key] = tf.TensorSpec((rows, *shape), tf.as_dtype(dtype), name=key)
        elif dtype.kind in "US" and shape == ():
            signature[key] = tf.TensorSpec((rows,), tf.string, name=key)
        else:
            raise LoaderError(
                f"key {key!r} holds {dtype} values of shape {shape}, which have no TensorFlow "
                "type here: pass output_signature"
            )
    return signature


def _to_tf(tf: Any, value: Any, spec: Any) -> Any:
    if isinstance(spec, tf.RaggedTensorSpec):
        if isinstance(value, np.ndarray):  # this batch's values happened to share one shape
            return tf.RaggedTensor.from_tensor(value, ragged_rank=spec.ragged_rank)
        return tf.ragged.constant([np.asarray(item).tolist() for item in value], dtype=spec.dtype)
    if isinstance(value, list):
        return np.asarray(value, dtype=object if spec.dtype == tf.string else None)
    return value


def to_tensorflow(loader: Loader, output_signature: dict[str, Any] | None = None) -> tf.data.Dataset:
    """A `tf.data.Dataset` over the loader's batches (one pass, or endless).

    `output_signature` defaults to `tensorflow_signature(loader)`; give one to keep only some
    keys or to declare ragged keys (`tf.RaggedTensorSpec`), whose lists are made ragged tensors.
    """
    import tensorflow as tf

    signature = tensorflow_signature(loader) if output_signature is None else output_signature

    def batches() -> Iterator[dict[str, Any]]:
        for batch in loader:
            yield {key: _to_tf(tf, batch[key], spec) for key, spec in signature.items()}

    return tf.data.Dataset.from_generator(batches, output_signature=signature)

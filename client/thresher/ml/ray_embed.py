"""Embeddings on Ray: a user's torch model mapped over a result's files by an actor pool, the vectors
written back in one atomic upload.

The result's rows are read as a Ray Dataset (one task per Flight partition); Ray Data hands batches of
paths to a pool of ``num_actors`` actors, each holding the model once (on a GPU when
``num_gpus_per_actor`` > 0); an actor fetches its batch's files (through flight, or from an enabled
bucket), turns each into a tensor with ``preprocess``, and runs the model without gradients. The
vectors go back through ``upload_ray_dataset``: every block staged from the workers, committed together.

Until the vector field type exists, a vector is stored as a blob field holding its float32 values,
little-endian (``np.frombuffer(blob, "<f4")`` reads it back); see ``vector_column``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from thresher.core.types import PATH_COLUMN
from thresher.ray_engine import require_ray
from thresher.ray_engine.remote import DatasourceRef

DEFAULT_BATCH_SIZE = 32


def image_tensor(data: bytes) -> Any:
    """The default ``preprocess``: an image file as a float32 CHW tensor scaled to [0, 1]."""
    import torch
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(pixels.transpose(2, 0, 1).copy())


def vector_column(vectors: np.ndarray) -> pa.Array:
    """The column a batch of vectors is written as: a float32 vector field (Arrow FixedSizeList)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])


class _Embedder:
    """A Ray actor's state: the model, on its device, and a reader of the datasource's files."""

    def __init__(
        self, model: Any, source: DatasourceRef, field: str, preprocess: Callable[[bytes], Any], use_gpu: bool
    ) -> None:
        import torch

        from thresher.downloads import reader_for

        if not isinstance(model, torch.nn.Module) and callable(model):
            model = model()  # a factory: builds the model in the actor rather than shipping its weights
        self.device = torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()
        self.datasource = source.open()
        self.read = reader_for(self.datasource)
        self.field = field
        self.preprocess = preprocess

    def __call__(self, batch: pa.Table) -> pa.Table:
        import torch

        paths = batch.column(PATH_COLUMN).to_pylist()
        tensors = [self.preprocess(b"".join(bytes(chunk) for chunk in self.read(path))) for path in paths]
        with torch.no_grad():
            output = self.model(torch.stack(tensors).to(self.device))
        vectors = output.detach().to("cpu", torch.float32).reshape(len(paths), -1).numpy()
        return pa.table({PATH_COLUMN: pa.array(paths, pa.string()), self.field: vector_column(vectors)})


def embed_on_ray(
    result: Any,
    model: Any,
    field: str = "embedding",
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_actors: int = 2,
    num_gpus_per_actor: float = 0,
    *,
    num_cpus_per_actor: float = 1,
    preprocess: Callable[[bytes], Any] = image_tensor,
) -> Any:
    """Computes ``model(files)`` for every datapoint of ``result`` on Ray and writes the vectors to ``field``.

    ``model``: a ``torch.nn.Module`` (shipped to each actor) or a function returning one (called in each
    actor). Its output for a batch of B inputs must hold B vectors (any shape per vector, flattened).
    Returns the upload's counts. Nothing is written unless every batch succeeded.
    """
    ray = require_ray()
    from thresher.ray_engine.upload_tasks import upload_ray_dataset

    view = result._source("embed it")  # noqa: SLF001
    source = DatasourceRef.of(view)
    rows = result.to_ray_dataset().select_columns([PATH_COLUMN])
    vectors = rows.map_batches(
        _Embedder,
        batch_size=batch_size,
        batch_format="pyarrow",
        fn_constructor_args=(model, source, field, preprocess, num_gpus_per_actor > 0),
        compute=ray.data.ActorPoolStrategy(size=num_actors),
        num_gpus=num_gpus_per_actor or None,
        num_cpus=num_cpus_per_actor,
    )
    return upload_ray_dataset(view, vectors, PATH_COLUMN)

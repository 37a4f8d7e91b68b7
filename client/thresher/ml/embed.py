"""``embed``: run a user's torch model over a query result's files and store its outputs as a vector field.

The files come through the torch adapter (``as_ml_dataset``), the vectors go back in bulk uploads
(Flight DoPut) every ``write_every`` datapoints, so an interrupted run keeps what it wrote; a rerun
skips the datapoints that already have the field (unless ``overwrite``) and so resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from thresher.core.errors import InvalidArgumentError
from thresher.core.types import FieldType


def default_preprocess(batch: Any) -> Any:
    """Image batches (N×H×W×C uint8, as the image tensorizer gives) to N×C×H×W floats in [0, 1]; other
    tensors as floats."""
    import torch

    if batch.dtype == torch.uint8 and batch.ndim == 4:
        return batch.permute(0, 3, 1, 2).float() / 255.0
    return batch.float()


def _already_done(datasource: Any, field: str, paths: list[str]) -> set[str]:
    """The paths that have a value for ``field`` now (whatever the view's own filter, limit or instant)."""
    from thresher.query import QuerySpec

    kind = datasource.fields.get(field)
    if kind is None:
        return set()
    if kind is not FieldType.VECTOR:
        raise InvalidArgumentError(f"field '{field}' has type {kind.value}, not vector")
    current = datasource._view(QuerySpec())  # noqa: SLF001 - the whole datasource, as it is now
    have = current[current.column(field).is_not_null()].select("path").all().paths
    wanted = set(paths)
    return {path for path in have if path in wanted}


def embed(
    result: Any,
    model: Any,
    field: str,
    batch: int = 64,
    *,
    overwrite: bool = False,
    preprocess: Callable[[Any], Any] | None = default_preprocess,
    device: Any = None,
    dtype: str = "float32",
    write_every: int = 4096,
    progress: bool = True,
    engine: str = "local",
    **dataset_options: Any,
) -> Any:
    """Runs ``model`` over the files of ``result`` and writes one vector per datapoint into ``field``.

    ``model`` maps a batch (after ``preprocess``) to an N×… tensor; each row is flattened into a vector.
    ``dataset_options`` go to ``as_ml_dataset`` (e.g. ``tensorizers``, ``strategy``). Returns how many
    datapoints were embedded in this call.

    ``engine="ray"`` maps the model over the files with Ray Data instead (an actor pool; the options
    ``num_actors``, ``num_gpus_per_actor`` and ``num_cpus_per_actor`` go to ``embed_on_ray``), writes
    every vector in one atomic upload, and returns the upload's counts.
    """
    if engine == "ray":
        from thresher.ml.ray_embed import embed_on_ray

        options: dict[str, Any] = {"preprocess": preprocess} if preprocess is not default_preprocess else {}
        return embed_on_ray(result, model, field, batch, **options, **dataset_options)
    if engine != "local":
        raise InvalidArgumentError(f"engine takes 'local' or 'ray', got {engine!r}")
    import torch
    from tqdm.auto import tqdm

    from thresher.results import QueryResult

    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InvalidArgumentError(f"batch takes a positive int, got {batch!r}")
    datasource = result._source("embed it")  # noqa: SLF001 - the view the result was read through
    paths = result.paths
    done = set() if overwrite else _already_done(datasource, field, paths)
    todo = np.array([path not in done for path in paths], dtype=bool)
    if not todo.any():
        return 0
    remaining = QueryResult(result.arrow.filter(todo), getattr(result, "_source_uri", ""), datasource=datasource)
    dataset = remaining.as_ml_dataset("torch", progress=False, **dataset_options)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False)
    todo_paths = remaining.paths
    pending_paths: list[str] = []
    pending: list[np.ndarray] = []
    written = 0

    def flush() -> None:
        nonlocal written
        if pending_paths:
            datasource.upload_vectors(field, list(pending_paths), np.concatenate(pending), dtype=dtype)
            written += len(pending_paths)
            pending_paths.clear()
            pending.clear()

    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with (
            torch.no_grad(),
            tqdm(
                total=len(todo_paths),
                desc=f"embedding into {field}",
                unit=" datapoints",
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            start = 0
            for inputs in loader:
                if isinstance(inputs, tuple | list):
                    inputs = inputs[0]
                if preprocess is not None:
                    inputs = preprocess(inputs)
                if device is not None:
                    inputs = inputs.to(device)
                outputs = model(inputs)
                vectors = outputs.detach().float().cpu().numpy().reshape(len(outputs), -1)
                pending.append(vectors)
                pending_paths.extend(todo_paths[start : start + len(vectors)])
                start += len(vectors)
                bar.update(len(vectors))
                if len(pending_paths) >= write_every:
                    flush()
            flush()
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    return written

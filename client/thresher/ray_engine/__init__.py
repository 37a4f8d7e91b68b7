"""Thresher's batch work on Ray: query results as Ray Datasets, Ray Datasets uploaded as metadata, and
bag exports written by Ray tasks. Imported only when used; needs the ``thresher[ray]`` extra.

- ``read.to_ray_dataset``: one Ray read task per Flight endpoint (partition) of a query, each fetching its
  partition straight from the flight nodes that serve it.
- ``upload.upload_ray_dataset``: every block staged from a worker through Flight DoPut, then one atomic commit.
- ``export.export_on_ray``: the bag shards of an export written by Ray tasks, byte-identical to a local export.
"""

from __future__ import annotations

from typing import Any

from thresher.core.errors import MissingExtraError


def require_ray() -> Any:
    """The ``ray`` module, or a MissingExtraError (an ImportError) that names the extra installing it."""
    try:
        import ray
    except ImportError as error:
        raise MissingExtraError("this needs Ray: pip install 'thresher[ray]'") from error
    return ray

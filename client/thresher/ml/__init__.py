"""Machine-learning adapters: query results as PyTorch and TensorFlow datasets, and as FiftyOne datasets.

Nothing here imports torch, tensorflow or fiftyone until a dataset of that flavor is asked for, so
``import thresher`` stays light. The entry points are ``QueryResult.as_ml_dataset``,
``QueryResult.as_ml_dataloader``, ``QueryResult.to_voxel51_dataset`` and ``QueryResult.visualize``; ``embed`` writes a model's outputs back
as a vector field.
"""

from thresher.ml.api import FLAVORS, as_ml_dataloader, as_ml_dataset
from thresher.ml.embed import embed
from thresher.ml.items import MissingValueError
from thresher.ml.tensorizers import TENSORIZERS, TensorizerError

__all__ = [
    "FLAVORS",
    "TENSORIZERS",
    "MissingValueError",
    "TensorizerError",
    "as_ml_dataloader",
    "as_ml_dataset",
    "embed",
]

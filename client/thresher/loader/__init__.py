"""Feeding training from bag datasets or any indexable source; see `Loader`."""

from typing import Any

from thresher._moved import moved_attribute
from thresher.loader.adapters import tensorflow_signature, to_tensorflow, to_torch
from thresher.loader.loader import Loader, default_start_method
from thresher.loader.loader_errors import LoaderError, WorkerError

__all__ = [
    "Loader",
    "LoaderError",
    "WorkerError",
    "default_start_method",
    "tensorflow_signature",
    "to_tensorflow",
    "to_torch",
]


def __getattr__(name: str) -> Any:
    # A renamed module reached as an attribute by its old name (``errors``, ``files``): the deprecated alias.
    return moved_attribute(__name__, name)

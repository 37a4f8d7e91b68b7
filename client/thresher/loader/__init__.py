"""Feeding training from bag datasets or any indexable source; see `Loader`."""

from thresher.loader.adapters import tensorflow_signature, to_tensorflow, to_torch
from thresher.loader.errors import LoaderError, WorkerError
from thresher.loader.loader import Loader, default_start_method

__all__ = [
    "Loader",
    "LoaderError",
    "WorkerError",
    "default_start_method",
    "tensorflow_signature",
    "to_tensorflow",
    "to_torch",
]

"""Bag datasets as users import them: the format's classes (from ``thresher.core.bag``) with ``Loader`` and ``sources``.

``Loader`` and ``sources`` are here, as in ``granular``, so ``import thresher.bag as granular`` runs a granular
training script unchanged. The format itself (readers, writers, specs, codecs) lives in ``thresher.core.bag``,
which the flight service shares; its modules' old paths (``thresher.bag.reader``, ...) still import, deprecated.
"""

from typing import Any

from thresher import sources
from thresher._moved import moved_attribute
from thresher.core.bag import (
    BagError,
    BagReader,
    BagWriter,
    ChecksumError,
    CorruptBagError,
    DatasetExistsError,
    DatasetReader,
    DatasetWriter,
    DecodeError,
    EncodeError,
    IncompleteDatasetError,
    MaskError,
    ResumeError,
    ShardedDatasetReader,
    ShardedDatasetWriter,
    SpecError,
    UnsupportedLocationError,
    decoders,
    encoders,
    register_storage,
)
from thresher.loader.loader import Loader

__all__ = [
    "BagError",
    "BagReader",
    "BagWriter",
    "ChecksumError",
    "CorruptBagError",
    "DatasetExistsError",
    "DatasetReader",
    "DatasetWriter",
    "DecodeError",
    "EncodeError",
    "IncompleteDatasetError",
    "Loader",
    "MaskError",
    "ResumeError",
    "ShardedDatasetReader",
    "ShardedDatasetWriter",
    "SpecError",
    "UnsupportedLocationError",
    "decoders",
    "encoders",
    "register_storage",
    "sources",
]


def __getattr__(name: str) -> Any:
    # ``thresher.bag.formats`` and the other moved modules, reached as attributes: the deprecated alias.
    return moved_attribute(__name__, name)

"""Bag datasets: Thresher's implementation of the Granular format, readable both ways with ``granular``.

See docs/design.md ("Bag datasets"), and ``FORMAT.md`` beside this file for what Thresher adds to the format (the
``.crc`` sidecar, key rules, ``int`` range, ``f64``, cloud paths). One module per idea: ``files``
(ranged reads, the storage hook), ``cloud`` (``s3://`` and ``gs://`` through ``thresher.storage``),
``staging`` (writers write locally, then upload), ``tables`` (index tables), ``checksums`` (the
``.crc`` sidecar), ``bag`` (one bag), ``spec``, ``writer`` and ``reader`` (one dataset), ``sharded``,
and the formats (``formats``, ``arrays``, ``video``).

``Loader`` and ``sources`` are here too, as in ``granular``, so ``import thresher.bag as granular``
runs a granular training script unchanged.
"""

from thresher import sources

from thresher.bag.bag import BagReader, BagWriter
from thresher.bag.errors import (
    BagError,
    ChecksumError,
    CorruptBagError,
    DatasetExistsError,
    DecodeError,
    EncodeError,
    IncompleteDatasetError,
    MaskError,
    ResumeError,
    SpecError,
    UnsupportedLocationError,
)
from thresher.bag.files import register_storage
from thresher.bag.formats import decoders, encoders
from thresher.bag.reader import DatasetReader
from thresher.bag.sharded import ShardedDatasetReader, ShardedDatasetWriter
from thresher.bag.writer import DatasetWriter
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

"""Bag datasets: Thresher's implementation of the Granular format, readable both ways with ``granular``.

See docs/design.md ("Bag datasets"), and ``FORMAT.md`` beside this file for what Thresher adds to the format (the
``.crc`` sidecar, key rules, ``int`` range, ``f64``, cloud paths). One module per idea: ``files``
(ranged reads, the storage hook), ``cloud`` (``s3://`` and ``gs://`` through ``thresher.core.storage``),
``staging`` (writers write locally, then upload), ``tables`` (index tables), ``checksums`` (the
``.crc`` sidecar), ``bag`` (one bag), ``spec``, ``writer`` and ``reader`` (one dataset), ``sharded``,
and the formats (``formats``, ``arrays``, ``video``).

This is the format alone, shared by the client and the flight service. ``thresher.bag`` is the user-facing,
granular-compatible package: these classes plus ``Loader`` and ``sources``.
"""

from thresher.core.bag.bag import BagReader, BagWriter
from thresher.core.bag.bag_errors import (
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
from thresher.core.bag.files import register_storage
from thresher.core.bag.formats import decoders, encoders
from thresher.core.bag.reader import DatasetReader
from thresher.core.bag.sharded import ShardedDatasetReader, ShardedDatasetWriter
from thresher.core.bag.writer import DatasetWriter

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
    "MaskError",
    "ResumeError",
    "ShardedDatasetReader",
    "ShardedDatasetWriter",
    "SpecError",
    "UnsupportedLocationError",
    "decoders",
    "encoders",
    "register_storage",
]

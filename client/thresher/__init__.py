"""Thresher: an open, self-hosted data engine for machine-learning datasets."""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version
from typing import Any as _Any

try:
    __version__ = _version("thresher")  # single-sourced from pyproject.toml through the installed metadata
except _PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

from thresher import _moved

_moved.install()  # first: old paths of moved modules (thresher.types, ...) stay importable, deprecated

from thresher import datasets, datasources, namespaces, sources
from thresher.connection import Connection, connect, default_connection, set_default_connection
from thresher.core.bag import (
    BagReader,
    BagWriter,
    DatasetReader,
    DatasetWriter,
    ShardedDatasetReader,
    ShardedDatasetWriter,
    decoders,
    encoders,
)
from thresher.core.errors import (
    AlreadyExistsError,
    FieldTypeMismatchError,
    InvalidArgumentError,
    MissingExtraError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    QueryExpressionError,
    ResourceExhaustedError,
    ScanFailedError,
    ScanInProgressWarning,
    ServiceError,
    ServiceTimeoutError,
    ServiceUnavailableError,
    StoreLayoutError,
    StoreUnavailableError,
    ThresherError,
    UnknownFieldError,
    UnknownPathsError,
)
from thresher.core.scan_status import ScanStatus
from thresher.core.storage.storage_errors import (
    BlobNotFoundError,
    StorageAccessDeniedError,
    StorageError,
    StorageNotFoundError,
    StorageUnavailableError,
    UnknownRevisionError,
    UnsafePathError,
)
from thresher.core.types import FieldType
from thresher.datasets import delete_dataset, get_dataset, get_datasets
from thresher.datasource import Datasource
from thresher.datasources import create_datasource, get_datasource, get_datasources
from thresher.datasources import get_or_create as get_or_create_datasource
from thresher.downloads import (
    DownloadReport,
    UnsafePathWarning,
    disable_bucket_downloaders,
    enable_gcs_bucket_downloader,
    enable_s3_bucket_downloader,
)
from thresher.loader import Loader
from thresher.metadata_context import MetadataContext
from thresher.namespaces import Namespace, create_namespace, get_namespace, get_or_create_namespace
from thresher.query import Column, Expression, Field, Order
from thresher.results import Datapoint, QueryResult

__all__ = [
    "__version__",
    "MissingExtraError",
    "QueryExpressionError",
    "BagReader",
    "BagWriter",
    "DatasetReader",
    "DatasetWriter",
    "ShardedDatasetReader",
    "ShardedDatasetWriter",
    "decoders",
    "encoders",
    "DownloadReport",
    "UnsafePathWarning",
    "AlreadyExistsError",
    "BlobNotFoundError",
    "Namespace",
    "StorageAccessDeniedError",
    "StorageError",
    "StorageNotFoundError",
    "StorageUnavailableError",
    "UnknownRevisionError",
    "UnsafePathError",
    "create_namespace",
    "disable_bucket_downloaders",
    "enable_gcs_bucket_downloader",
    "enable_s3_bucket_downloader",
    "get_namespace",
    "get_or_create_namespace",
    "namespaces",
    "Column",
    "Connection",
    "Datapoint",
    "Datasource",
    "Expression",
    "Field",
    "FieldType",
    "FieldTypeMismatchError",
    "InvalidArgumentError",
    "Loader",
    "MetadataContext",
    "NotFoundError",
    "Order",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "ServiceTimeoutError",
    "QueryError",
    "QueryResult",
    "ScanFailedError",
    "ScanInProgressWarning",
    "ScanStatus",
    "ServiceError",
    "ServiceUnavailableError",
    "StoreLayoutError",
    "StoreUnavailableError",
    "ThresherError",
    "UnknownFieldError",
    "UnknownPathsError",
    "connect",
    "create_datasource",
    "datasets",
    "datasources",
    "default_connection",
    "delete_dataset",
    "get_dataset",
    "get_datasets",
    "get_datasource",
    "get_datasources",
    "get_or_create_datasource",
    "set_default_connection",
    "sources",
]


def __getattr__(name: str) -> _Any:
    # ``thresher.types`` and the other moved modules, reached as attributes after ``import thresher``: the alias.
    return _moved.moved_attribute(__name__, name)

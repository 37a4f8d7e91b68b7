"""Thresher: an open, self-hosted data engine for machine-learning datasets."""

from thresher import datasets, datasources, sources
from thresher.connection import Connection, connect, default_connection, set_default_connection
from thresher.datasets import delete_dataset, get_dataset, get_datasets
from thresher.datasource import Datasource
from thresher.datasources import create_datasource, get_datasource, get_datasources
from thresher.datasources import get_or_create as get_or_create_datasource
from thresher.errors import (AlreadyExistsError, FieldTypeMismatchError, InvalidArgumentError, NotFoundError,
                             PermissionDeniedError, QueryError, ScanFailedError, ScanInProgressWarning,
                             ServiceError, ServiceUnavailableError, ThresherError, UnknownFieldError)
from thresher.loader import Loader
from thresher.metadata_context import MetadataContext
from thresher.query import Column, Expression, Field, Order
from thresher.results import Datapoint, QueryResult
from thresher.scan import ScanStatus
from thresher.types import FieldType

__all__ = [
    "AlreadyExistsError", "Column", "Connection", "Datapoint", "Datasource", "Expression", "Field", "FieldType",
    "FieldTypeMismatchError", "InvalidArgumentError", "Loader", "MetadataContext", "NotFoundError", "Order",
    "PermissionDeniedError", "QueryError", "QueryResult", "ScanFailedError", "ScanInProgressWarning",
    "ScanStatus", "ServiceError", "ServiceUnavailableError", "ThresherError", "UnknownFieldError", "connect",
    "create_datasource", "datasets", "datasources", "default_connection", "delete_dataset", "get_dataset",
    "get_datasets", "get_datasource", "get_datasources", "get_or_create_datasource", "set_default_connection", "sources",
]

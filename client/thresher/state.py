"""The description and schema of one datasource, shared by all its views and refreshed on demand.

Field types never change once fixed, so a cached type is always right; only a miss (a field added
since, by anyone) needs a refresh, and each lookup refreshes at most once.
"""

from __future__ import annotations

from collections.abc import Iterable

from thresher.connection import Connection
from thresher.core.errors import UnknownFieldError
from thresher.core.types import DATAPOINT_ID_COLUMN, PATH_COLUMN, FieldType
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as ms

# Every datapoint has these; they filter and order like fields.
BUILTIN_COLUMNS = {PATH_COLUMN: FieldType.STRING, DATAPOINT_ID_COLUMN: FieldType.INT}


class DatasourceState:
    """What every view of one datasource shares: the connection and the latest description."""

    def __init__(self, connection: Connection, proto: common_pb2.Datasource) -> None:
        self.connection = connection
        self.proto = proto
        self.fields = _fields_of(proto)
        # Set by our own writes, which may have added fields: the next write-side miss refreshes.
        self.stale = False

    def refresh(self) -> common_pb2.Datasource:
        response = self.connection.call_metadata(
            "GetDatasource", ms.GetDatasourceRequest(id=self.proto.id), idempotent=True
        )
        self.proto = response.datasource
        self.fields = _fields_of(self.proto)
        self.stale = False
        return self.proto

    def write_type(self, name: str) -> FieldType | None:
        """The type a write to ``name`` must have; None for a new field."""
        if name not in self.fields and self.stale:
            self.refresh()
        return self.fields.get(name)

    def write_types(self, names: Iterable[str]) -> dict[str, FieldType]:
        """The known types among ``names``, refreshed first if our own writes may have added some."""
        if self.stale and any(name not in self.fields for name in names):
            self.refresh()
        return dict(self.fields)

    def field_type(self, name: str) -> FieldType:
        """The type of field ``name``; refreshes once on a miss, since another client may have added it."""
        if name in BUILTIN_COLUMNS:
            return BUILTIN_COLUMNS[name]
        if name not in self.fields:
            self.refresh()
        if name not in self.fields:
            known = ", ".join(sorted(self.fields)) or "none yet"
            raise UnknownFieldError(
                f"datasource '{self.proto.namespace}/{self.proto.name}' has no field '{name}'; its fields are: {known}"
            )
        return self.fields[name]


def _fields_of(proto: common_pb2.Datasource) -> dict[str, FieldType]:
    return {field.name: FieldType.from_proto(field.type) for field in proto.fields}

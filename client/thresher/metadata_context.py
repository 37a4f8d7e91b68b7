"""Collects metadata updates made in a ``with ds.metadata_context() as ctx:`` block into one request.

Values are checked and encoded as they are given, so a wrong type fails at the line that wrote it;
nothing reaches the service until the block ends without an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from thresher import fieldcheck
from thresher.core.errors import InvalidArgumentError
from thresher.core.types import FieldType, from_proto_value, utf8_text, validate_field_name
from thresher.results import paths_of
from thresher.v1 import common_pb2, metadata_service_pb2


class MetadataContext:
    """Metadata updates waiting to be written together. Use ``update_metadata`` inside the block."""

    def __init__(self, field_type: Callable[[str], FieldType | None], create_missing: bool = False) -> None:
        # `field_type` gives a field's known type (None: new); this block's first writes fix new ones.
        self._field_type = field_type
        self._types: dict[str, FieldType] = {}
        self._pending: dict[str, dict[str, common_pb2.Value]] = {}
        self._closed = False
        self.create_missing = create_missing

    def update_metadata(self, paths: Any, metadata: Mapping[str, Any], create_missing: bool | None = None) -> None:
        """Sets ``metadata`` (field → value) on each datapoint in ``paths`` (a path, Datapoint, or a list).

        A None/NaN/NaT value means "no value given": it leaves the field as it is. A path that is not a
        datapoint of the datasource makes the whole block fail with ``UnknownPathsError``, unless
        ``create_missing=True`` (here or on ``metadata_context``), which creates it.
        """
        if create_missing:
            self.create_missing = True
        if self._closed:
            raise InvalidArgumentError("this metadata context has ended; open a new one to write more")
        if not isinstance(metadata, Mapping):
            raise InvalidArgumentError(
                f"metadata must be a mapping of field name to value, got {type(metadata).__name__}"
            )
        encoded = {}
        for field, value in metadata.items():
            try:
                validate_field_name(field)
            except ValueError as error:
                raise InvalidArgumentError(str(error)) from None
            if field not in self._types and (known := self._field_type(field)) is not None:
                self._types[field] = known
            proto = fieldcheck.write_value(field, self._types.get(field), value)
            kind, _ = from_proto_value(proto)
            if kind is not None:
                self._types.setdefault(field, kind)
                encoded[field] = proto
        for path in paths_of(paths):
            if not path:
                raise InvalidArgumentError("a datapoint path cannot be empty")
            utf8_text(path, "a datapoint path")
            self._pending.setdefault(path, {}).update(encoded)

    def __len__(self) -> int:
        """How many datapoints have updates waiting."""
        return len(self._pending)

    def close(self) -> None:
        """Ends the context: later updates raise instead of being silently dropped."""
        self._closed = True

    def request(self, datasource_id: int) -> metadata_service_pb2.UpsertMetadataRequest:
        """The single request that writes every update."""
        return metadata_service_pb2.UpsertMetadataRequest(
            datasource_id=datasource_id,
            create_missing=self.create_missing,
            datapoints=[
                metadata_service_pb2.DatapointValues(path=path, values=values) for path, values in self._pending.items()
            ],
        )

"""Query results: the Arrow table a query returned, with pandas and per-datapoint views of it.

The table is the result; everything else is derived from it on demand, so a caller who only wants
``.dataframe`` or ``.arrow`` never pays for Python objects per row.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pyarrow as pa

from thresher.types import (DATAPOINT_ID_COLUMN, PATH_COLUMN, RESERVED_NAMES, SCAN_STATE_METADATA_KEY,
                            FieldType, arrow_kind, field_type_of)

if TYPE_CHECKING:
    import pandas as pd

# Builds the URL of `path` inside a source, by the source URI's scheme. Schemes that need signing or
# a proxy through the flight service register their own builder here.
URL_BUILDERS: dict[str, Callable[[str, str], str]] = {}


def register_url_builder(scheme: str, builder: Callable[[str, str], str]) -> None:
    """Makes ``builder(source_uri, path)`` give the download URLs of sources with this URI scheme."""
    URL_BUILDERS[scheme] = builder


def _join_url(source_uri: str, path: str) -> str:
    return source_uri.rstrip("/") + "/" + quote(path)


for _scheme in ("file", "s3", "gs"):
    register_url_builder(_scheme, _join_url)


def download_url(source_uri: str, path: str) -> str | None:
    """The URL of ``path`` inside the source at ``source_uri``; None when no builder knows the scheme."""
    scheme, sep, _ = source_uri.partition("://")
    builder = URL_BUILDERS.get(scheme) if sep else None
    return builder(source_uri, path) if builder else None


@dataclasses.dataclass
class Datapoint:
    """One datapoint of a result: its path, stable id, and the selected fields' values (None: no value)."""

    path: str
    datapoint_id: int
    metadata: dict[str, Any]
    source_uri: str = dataclasses.field(default="", repr=False, compare=False)
    datasource: Any = dataclasses.field(default=None, repr=False, compare=False)

    def __getitem__(self, field: str) -> Any:
        return self.metadata[field]

    def get(self, field: str, default: Any = None) -> Any:
        value = self.metadata.get(field)
        return default if value is None else value

    def history(self, field: str | None = None) -> pd.DataFrame:
        """Every write that touched this datapoint (or one field of it): when, who, what, as a DataFrame."""
        if self.datasource is None:
            raise ValueError("this Datapoint was not read from a datasource, so it has no history to fetch")
        return self.datasource.history(self.path, field)

    @property
    def download_url(self) -> str | None:
        """Where the datapoint's file lives (``file://`` + absolute path for local sources)."""
        return download_url(self.source_uri, self.path)


class QueryResult:
    """The datapoints a query returned: ``.arrow``, ``.dataframe``, ``.entries``, ``len``, iteration and
    lookup by path (``result["a/b.png"]``) or position."""

    def __init__(self, table: pa.Table, source_uri: str = "", datasource: Any = None) -> None:
        self._table = table
        self._source_uri = source_uri
        self._datasource = datasource

    @property
    def arrow(self) -> pa.Table:
        """The result as an Arrow table; each field's type is in its Arrow field metadata."""
        return self._table

    @functools.cached_property
    def dataframe(self) -> pd.DataFrame:
        """The result as a pandas DataFrame (``path``, ``datapoint_id``, then the fields)."""
        return self._table.to_pandas()

    @functools.cached_property
    def entries(self) -> list[Datapoint]:
        """The result as Datapoint objects, built on first use."""
        source = self._source_uri
        rows = self._table.to_pylist()
        return [Datapoint(row.pop(PATH_COLUMN), row.pop(DATAPOINT_ID_COLUMN), row, source, self._datasource)
                for row in rows]

    @property
    def paths(self) -> list[str]:
        return self._table.column(PATH_COLUMN).to_pylist()

    @property
    def fields(self) -> dict[str, FieldType | None]:
        """The result's field columns and their types."""
        return {f.name: field_type_of(f) or arrow_kind(f.type) for f in self._table.schema
                if f.name not in RESERVED_NAMES}

    @property
    def scan_state(self) -> str | None:
        """The datasource's scan state when the query ran: pending, scanning, ready or failed."""
        raw = (self._table.schema.metadata or {}).get(SCAN_STATE_METADATA_KEY)
        return raw.decode() if raw else None

    def __len__(self) -> int:
        return self._table.num_rows

    def __iter__(self) -> Iterator[Datapoint]:
        return iter(self.entries)

    def __getitem__(self, key: str | int) -> Datapoint:
        """A datapoint by path, or by position in the result."""
        if isinstance(key, str):
            try:
                return self.entries[self._positions[key]]
            except KeyError:
                raise KeyError(f"no datapoint with path {key!r} in this result") from None
        if isinstance(key, int):
            return self.entries[key]
        raise TypeError(f"look datapoints up by path (str) or position (int), not {type(key).__name__}")

    def __contains__(self, path: object) -> bool:
        return path in self._positions

    @functools.cached_property
    def _positions(self) -> dict[str, int]:
        return {path: i for i, path in enumerate(self.paths)}

    def __repr__(self) -> str:
        return f"<QueryResult: {len(self)} datapoints, fields {list(self.fields)}>"


def paths_of(items: str | os.PathLike[str] | Datapoint | QueryResult | Iterable[Any]) -> list[str]:
    """The datapoint paths named by a path, a Datapoint, a QueryResult, or an iterable of paths/Datapoints."""
    if isinstance(items, QueryResult):
        return items.paths
    if isinstance(items, str | os.PathLike | Datapoint):
        items = [items]
    paths = []
    for item in items:
        if isinstance(item, Datapoint):
            paths.append(item.path)
        elif isinstance(item, str | os.PathLike):
            paths.append(os.fspath(item))
        else:
            raise TypeError(f"expected a datapoint path or a Datapoint, got {type(item).__name__}")
    return paths

"""From request parameters to client views, pages of datapoints and JSON-ready values.

Pages: a plain view (no saved order or limit) pages by keyset on ``datapoint_id`` (each page one
query ``datapoint_id > last ORDER BY datapoint_id LIMIT n``, as fast at row 900 000 as at row 0); a
saved dataset with its own order or limit pages by position within that bounded result.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from thresher import datasets, datasources
from thresher.connection import Connection
from thresher.core.errors import InvalidArgumentError
from thresher.core.types import DATAPOINT_ID_COLUMN, FieldType
from thresher.datasource import Datasource
from thresher.expressions import parse
from thresher.query import as_instant

MAX_PAGE = 500
VERSION_FIELDS = ("size", "modified")  # the scanner's: a change in either means new bytes


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def open_view(conn: Connection, namespace: str, source: str, query: str = "", as_of: str = "") -> Datasource:
    """The view ``source`` names (``datasource:NAME`` or ``dataset:NAME`` in ``namespace``), filtered by
    the query expression ``query`` and read at ``as_of`` (ISO 8601; empty: now)."""
    kind, _, name = source.partition(":")
    if not namespace or not name or kind not in ("datasource", "dataset"):
        raise InvalidArgumentError("pick a namespace and a source (datasource:NAME or dataset:NAME)")
    if kind == "datasource":
        view = datasources.get_datasource(namespace, name, connection=conn)
    else:
        view = datasets.get_dataset(namespace, name, connection=conn)
    if query.strip():
        view = view[parse(query, view)]
    if as_of.strip():
        view = view.as_of(parse_instant(as_of))
    return view


def open_datasource(conn: Connection, datasource_id: int, as_of: str = "") -> Datasource:
    """The datasource with this id (the service refuses it to a token that may not read its namespace)."""
    view = datasources.get_datasource(id=datasource_id, connection=conn)
    return view.as_of(parse_instant(as_of)) if as_of.strip() else view


def parse_instant(text: str) -> dt.datetime:
    try:
        return as_instant(dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except ValueError:
        raise InvalidArgumentError(f"as of: {text!r} is not an ISO 8601 instant (e.g. 2026-11-01T12:00:00Z)") from None


def page(view: Datasource, cursor: str, limit: int, captions: list[str]) -> Page:
    """One page of ``view`` after ``cursor`` ("" first): each item's id, path, version and captions."""
    limit = max(1, min(limit, MAX_PAGE))
    fields = view.fields
    wanted = [f for f in dict.fromkeys([*captions, *VERSION_FIELDS]) if f in fields]
    spec = view.query
    if not spec.order_by and spec.limit is None:
        after = _cursor_number(cursor, "k")
        selected = view[view[DATAPOINT_ID_COLUMN] > after] if after is not None else view
        selected = selected.order_by(DATAPOINT_ID_COLUMN).limit(limit)
        rows = _rows(selected.select(*wanted) if wanted else selected.select("*"), wanted)
        next_cursor = f"k:{rows[-1]['id']}" if len(rows) == limit else None
    else:
        offset = _cursor_number(cursor, "o") or 0
        end = offset + limit if spec.limit is None else min(offset + limit, spec.limit)
        rows = _rows(view.limit(end).select(*wanted) if wanted else view.limit(end).select("*"), wanted)[offset:]
        next_cursor = f"o:{end}" if len(rows) == end - offset and end > offset else None
    return Page([item(view, row, captions) for row in rows], next_cursor)


def _cursor_number(cursor: str, kind: str) -> int | None:
    if not cursor:
        return None
    prefix, _, number = cursor.partition(":")
    if prefix != kind or not number.lstrip("-").isdigit():
        raise InvalidArgumentError(f"bad page cursor {cursor!r}")
    return int(number)


def _rows(view: Datasource, wanted: list[str]) -> list[dict[str, Any]]:
    table = view.all().arrow
    columns = ["path", DATAPOINT_ID_COLUMN, *[w for w in wanted if w in table.column_names]]
    return [
        {"path": r["path"], "id": r[DATAPOINT_ID_COLUMN], **{c: r.get(c) for c in columns[2:]}}
        for r in table.select(columns).to_pylist()
    ]


def item(view: Datasource, row: dict[str, Any], captions: list[str]) -> dict[str, Any]:
    """A grid tile's JSON: id, path, datasource, the thumbnail's version and the chosen captions."""
    version = "-".join(str(json_value(row.get(f)) or "") for f in VERSION_FIELDS)
    return {
        "id": row["id"],
        "path": row["path"],
        "datasource_id": view.id,
        "version": version,
        "captions": {c: json_value(row.get(c)) for c in captions if c in row},
    }


def fields_json(view: Datasource) -> dict[str, str]:
    return {name: (kind.value if isinstance(kind, FieldType) else str(kind)) for name, kind in view.fields.items()}


def json_value(value: Any) -> Any:
    """A value as JSON holds it: instants as ISO 8601, bytes as base64, NaN as null; text stays text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars (vectors)
        return json_value(value.tolist())
    return str(value)


def history_json(view: Datasource, path: str) -> list[dict[str, Any]]:
    frame = view.history(path)
    return [{str(k): json_value(_plain(v)) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _plain(value: Any) -> Any:
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    return value

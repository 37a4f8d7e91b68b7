"""Arrow tables out of the command: a Rich table on the terminal, or CSV, JSON or Parquet to stdout or a file."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import sys
from typing import Any

import click
import pyarrow as pa

from thresher.cli import console

FORMATS = ("table", "csv", "json", "parquet")
# A terminal table beyond this many rows helps nobody; the rest is one flag away.
TABLE_ROWS = 100


def write(table: pa.Table, fmt: str, output: str | None, *, limited: bool) -> None:
    """Writes ``table`` in ``fmt`` to ``output`` (a file path; None or "-" is stdout)."""
    to_stdout = output in (None, "-")
    if fmt == "table":
        if not to_stdout:
            raise click.UsageError("--format table is for the terminal; pick csv, json or parquet for --output")
        _print_table(table, limited)
    elif fmt == "parquet":
        if to_stdout:
            raise click.UsageError("--format parquet needs --output FILE (it is binary)")
        import pyarrow.parquet as pq

        pq.write_table(table, output)
    elif fmt == "csv":
        _write_text(_csv(table), output)
    else:
        _write_text(json.dumps(_records(table), ensure_ascii=False, indent=None) + "\n", output)
    if not to_stdout:
        console.note(f"wrote {table.num_rows} rows to {output}")


def _write_text(text: str, output: str | None) -> None:
    if output in (None, "-"):
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with open(output, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def _csv(table: pa.Table) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(table.column_names)
    for row in zip(*(column.to_pylist() for column in table.columns)):
        writer.writerow(["" if value is None else _text(value) for value in row])
    return buffer.getvalue()


def _records(table: pa.Table) -> list[dict[str, Any]]:
    return [{name: _json_value(value) for name, value in row.items()} for row in table.to_pylist()]


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def _text(value: Any) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def _print_table(table: pa.Table, limited: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    shown = table if limited else table.slice(0, TABLE_ROWS)
    view = Table(*table.column_names, show_lines=False)
    for column in view.columns:
        column.overflow = "fold"
    for row in zip(*(column.to_pylist() for column in shown.columns)):
        view.add_row(*(Text("null", style="dim") if value is None else Text(_text(value)) for value in row))
    console.out().print(view)
    if shown.num_rows < table.num_rows:
        console.note(f"showing {shown.num_rows} of {table.num_rows} rows; pass --limit, or --format csv for all")
    else:
        console.note(f"{table.num_rows} rows")


def print_rows(headers: list[str], rows: list[list[Any]], empty: str) -> None:
    """A small listing (namespaces, datasources) as a Rich table, or ``empty`` when there is nothing."""
    from rich.table import Table
    from rich.text import Text

    if not rows:
        console.note(empty)
        return
    view = Table(*headers)
    for column in view.columns:
        column.overflow = "fold"
    for row in rows:
        view.add_row(*(Text("") if value is None else Text(_text(value)) for value in row))
    console.out().print(view)

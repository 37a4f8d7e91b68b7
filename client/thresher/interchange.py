"""Query results and views as Arrow for other tools: the PyCapsule stream interface and ``to_*`` methods.

Anything that reads the Arrow C stream interface takes a result or a view directly, without a copy
in Python: ``pyarrow.table(r)``, ``polars.DataFrame(r)``, ``pandas.DataFrame.from_arrow(r)``, and
DuckDB's replacement scans (``duckdb.sql("select * from r")``). A view runs its query each time it
is read (DuckDB may read it more than once for one statement; run ``view.all()`` once to avoid that).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_BATCH_ROWS = 65_536


class ArrowExport:
    """Arrow interchange for a class that can open its rows as a RecordBatchReader (``_arrow_reader``;
    ``native`` asks for one read in C, whose errors need no mapping to Python exceptions)."""

    def _arrow_reader(self, native: bool = False) -> pa.RecordBatchReader:
        raise NotImplementedError

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The rows as an Arrow C stream (PyCapsule), batch by batch as they are read."""
        return self._arrow_reader(native=True).__arrow_c_stream__(requested_schema)

    def to_arrow(self) -> pa.Table:
        """The rows as a pyarrow Table; each field's type is in its Arrow field metadata."""
        return self._arrow_reader().read_all()

    def to_pandas(self, **options: Any) -> pd.DataFrame:
        """The rows as a pandas DataFrame (``options`` go to ``pyarrow.Table.to_pandas``)."""
        return self.to_arrow().to_pandas(**options)

    def to_polars(self) -> Any:
        """The rows as a polars DataFrame (needs ``pip install thresher[polars]``)."""
        import polars

        return polars.DataFrame(self)

    def iter_batches(self, batch_size: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """The rows as record batches of ``batch_size`` rows (the last may be shorter), read as they
        are iterated: a view's result streams from the service and is never held whole."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, not {batch_size!r}")
        return rebatch(self._arrow_reader(), batch_size)

    def to_hf_dataset(
        self, file_column: str | None = "file", *, image: bool | None = None, savedir: Any = None, progress: bool = True
    ) -> Any:
        """The rows as a Hugging Face ``datasets.Dataset`` (needs ``pip install thresher[hf]``).

        Metadata columns stay Arrow. Unless ``file_column`` is None, each datapoint's file is fetched
        through the download cache (local sources are read in place) and its local path goes into that
        column, typed ``datasets.Image`` when ``image`` is true, or when it is None and every file is
        an image by its extension.
        """
        from thresher.hf import to_hf_dataset

        return to_hf_dataset(
            self.to_arrow(), self._hf_source(), file_column, image=image, savedir=savedir, progress=progress
        )

    def _hf_source(self) -> Any:
        raise NotImplementedError


def rebatch(batches: Iterable[pa.RecordBatch], batch_size: int) -> Iterator[pa.RecordBatch]:
    """``batches`` regrouped into batches of exactly ``batch_size`` rows (the last may be shorter).

    Only what one output batch needs is held; a batch that is already the right size passes unchanged.
    """
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        while batch.num_rows:
            take = min(batch.num_rows, batch_size - held)
            pending.append(batch.slice(0, take))
            held += take
            batch = batch.slice(take)
            if held == batch_size:
                yield _combine(pending)
                pending, held = [], 0
    if held:
        yield _combine(pending)


def _combine(pieces: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(pieces) == 1:
        return pieces[0]
    return pa.Table.from_batches(pieces).combine_chunks().to_batches()[0]

"""A datasource as the user sees it: an immutable view (datasource + query) with query and write methods.

``ds[filter]``, ``select``, ``order_by``, ``limit`` and ``as_of`` each return a new view; the view's
description and schema are shared by every view of the same datasource and refreshed on demand.
Queries whose result is known to be small (a lookup by path, a head, a small limit) are answered by
the metadata service in one call; other queries go through Flight. Both give the same table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, overload

import pyarrow as pa
import pyarrow.compute as pc

from thresher import scan_progress, similarity, upload
from thresher.connection import Connection
from thresher.core import arrow_io
from thresher.core.errors import (
    InvalidArgumentError,
    NotFoundError,
    QueryError,
    ScanInProgressWarning,
    ServiceUnavailableError,
)
from thresher.core.scan_status import FAILED, PENDING, SCANNING, ScanStatus
from thresher.core.types import PATH_COLUMN, SCAN_STATE_METADATA_KEY, FieldType, utf8_text
from thresher.interchange import ArrowExport
from thresher.metadata_context import MetadataContext
from thresher.query import Column, Expression, Field, Order, QuerySpec, as_instant
from thresher.results import QueryResult, paths_of
from thresher.state import BUILTIN_COLUMNS, DatasourceState
from thresher.v1 import common_pb2, scanner_service_pb2
from thresher.v1 import metadata_service_pb2 as ms


@dataclasses.dataclass(frozen=True)
class FacetCounts:
    """Value counts or a histogram of one field (``Datasource.count_values``)."""

    counts: Any
    """An Arrow table: (value, count), most frequent first; or (low, high, count) per histogram bin."""
    total_rows: int
    missing: int
    """Rows of the result without a value for the field."""


class Datasource(ArrowExport):
    """A datasource, or a filtered/ordered view of one. Obtain it from ``thresher.datasources``.

    A view is an Arrow stream producer: each read (``pyarrow.table(view)``, ``polars.DataFrame(view)``,
    ``view.iter_batches()``, a DuckDB scan) runs its query and streams the result from the service.
    """

    def __init__(
        self,
        connection: Connection,
        proto: common_pb2.Datasource,
        spec: QuerySpec | None = None,
        dataset: common_pb2.Dataset | None = None,
        *,
        _shared: DatasourceState | None = None,
    ) -> None:
        self._shared = _shared or DatasourceState(connection, proto)
        self._spec = spec or QuerySpec()
        self._dataset = dataset

    def _view(self, spec: QuerySpec, dataset: common_pb2.Dataset | None = None) -> Datasource:
        return Datasource(
            self._shared.connection, self._shared.proto, spec, dataset or self._dataset, _shared=self._shared
        )

    def _with(self, **changes: Any) -> Datasource:
        return self._view(dataclasses.replace(self._spec, **changes))

    # -- description ------------------------------------------------------------------------------

    @property
    def id(self) -> int:
        return self._shared.proto.id

    @property
    def name(self) -> str:
        return self._shared.proto.name

    @property
    def namespace(self) -> str:
        return self._shared.proto.namespace

    @property
    def source(self) -> str:
        """The source URI (``file:///abs/dir``, ``s3://bucket/prefix``, or a path in the namespace's repository)."""
        return self._shared.proto.source_uri

    @property
    def revision(self) -> str:
        return self._shared.proto.revision

    @property
    def dataset_name(self) -> str | None:
        """The name of the saved dataset this view was loaded from, if any."""
        return self._dataset.name if self._dataset is not None else None

    @property
    def query(self) -> QuerySpec:
        """What this view selects: filter, selected fields, order, limit and read instant."""
        return self._spec

    @property
    def connection(self) -> Connection:
        return self._shared.connection

    @property
    def fields(self) -> dict[str, FieldType]:
        """The datasource's fields and their types, fetched fresh."""
        self._shared.refresh()
        return dict(self._shared.fields)

    @property
    def scan_status(self) -> ScanStatus:
        """The scan's progress, fetched fresh."""
        return self._scan_status()

    def _scan_status(self) -> ScanStatus:
        # The scanner knows a scan it just started before the datasource's record shows it (which
        # still reads READY from the last scan); the record is the fallback when the scanner is down.
        try:
            response = self.connection.call_scanner(
                "GetScanStatus", scanner_service_pb2.GetScanStatusRequest(datasource_id=self.id), idempotent=True
            )
            return ScanStatus.from_proto(response.scan)
        except ServiceUnavailableError:
            return ScanStatus.from_proto(self._shared.refresh().scan)

    def wait_until_ready(self, timeout: float | None = None, progress: bool = True) -> Datasource:
        """Waits for the scan to finish, showing files seen and the rate; returns this view.

        Raises ScanFailedError (with the reason) if the scan failed, TimeoutError after ``timeout`` s.
        """
        scan_progress.wait_until_ready(self._scan_status, f"{self.namespace}/{self.name}", timeout, progress)
        return self

    def rescan(self) -> ScanStatus:
        """Starts a new (incremental) scan of the source unless one is running."""
        response = self.connection.call_scanner(
            "StartScan", scanner_service_pb2.StartScanRequest(datasource_id=self.id)
        )
        return ScanStatus.from_proto(response.scan)

    def __repr__(self) -> str:
        parts = [f"{self.namespace}/{self.name}", f"id={self.id}"]
        if self.dataset_name:
            parts.append(f"dataset={self.dataset_name!r}")
        spec = self._spec
        if spec.filter is not None:
            parts.append(f"filter={spec.filter!r}")
        for label, value in (("select", spec.select), ("order_by", spec.order_by)):
            if value:
                parts.append(f"{label}={list(value)}")
        if spec.limit is not None:
            parts.append(f"limit={spec.limit}")
        if spec.as_of is not None:
            parts.append(f"as_of={spec.as_of.isoformat()}")
        return f"<Datasource {' '.join(parts)}>"

    # -- building queries -------------------------------------------------------------------------

    @overload
    def __getitem__(self, key: str) -> Column: ...

    @overload
    def __getitem__(self, key: Expression) -> Datasource: ...

    def __getitem__(self, key: str | Expression) -> Column | Datasource:
        """``ds["field"]`` is a Column; ``ds[filter]`` is a new view whose filter is this one's AND ``filter``."""
        if isinstance(key, str):
            return Column(key, self._shared.field_type(key), self.id)
        if isinstance(key, Expression):
            if key.datasource_id not in (None, self.id):
                raise QueryError(
                    f"this filter uses columns of datasource {key.datasource_id}, not of "
                    f"{self.namespace}/{self.name} (id {self.id})"
                )
            return self._view(self._spec.and_filter(key))
        if isinstance(key, Column):
            raise QueryError(f"{key!r} is a column, not a filter: compare it, e.g. ds[{key!r} == True]")
        raise TypeError(f"index a datasource with a field name or a filter, not {type(key).__name__}")

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("a Datasource is a query, not a sequence of datapoints: iterate over ds.all()")

    def column(self, name: str) -> Column:
        """The column of field ``name`` (same as ``ds[name]``)."""
        return Column(name, self._shared.field_type(name), self.id)

    def select(self, *fields: str | Column | Field) -> Datasource:
        """A view returning only these fields (path and datapoint_id always come first); none: every field.

        ``"*"`` stands for every field; ``Field(name, as_of=t, alias=...)`` reads one field at ``t``.
        """
        items: dict[str, Field] = {}
        for field in fields:
            if isinstance(field, Field):
                self._field_name(field.name)
                item = field
            elif isinstance(field, str) and field == "*":
                item = Field("*")
            else:
                item = Field(self._field_name(field))
            if item.name in BUILTIN_COLUMNS and item.alias is None:
                continue
            if item.output_name in items and items[item.output_name] != item:
                raise QueryError(f"column {item.output_name!r} is selected twice; give one an alias")
            items[item.output_name] = item
        return self._with(select=tuple(items.values()))

    def order_by(self, *keys: str | Column | Order) -> Datasource:
        """A view ordered by these keys: names or columns ascend; use ``ds["x"].desc()`` to descend."""
        orders = []
        for key in keys:
            order = key if isinstance(key, Order) else Order(self._field_name(key))
            self._shared.field_type(order.field)
            orders.append(order)
        return self._with(order_by=tuple(orders))

    def limit(self, n: int) -> Datasource:
        """A view returning at most ``n`` datapoints."""
        return self._with(limit=_row_count("limit", n))

    def as_of(self, instant: Any) -> Datasource:
        """A view reading the metadata as it was at ``instant`` (a datetime; naive means UTC)."""
        return self._with(as_of=as_instant(instant))

    def changes(self, since: Any = None, until: Any = None) -> Any:
        """What changed between two instants (inclusive; None is open), oldest first, as a DataFrame:
        when, who (``actor``), the ``operation``, the path, ``cleared`` fields and the values written."""
        request = ms.ListChangesRequest(datasource_id=self.id)
        if since is not None:
            request.since.FromDatetime(as_instant(since))
        if until is not None:
            request.until.FromDatetime(as_instant(until))
        return self.connection.read_metadata_stream("ListChanges", request).to_pandas()

    def history(self, path: str, field: str | None = None) -> Any:
        """Every write that touched the datapoint at ``path`` (or that field of it), as a DataFrame."""
        if field is not None:
            self._shared.field_type(field)
        request = ms.GetHistoryRequest(datasource_id=self.id, path=path, field=field or "")
        return self.connection.read_metadata_stream("GetHistory", request).to_pandas()

    def _field_name(self, field: str | Column) -> str:
        if isinstance(field, Column):
            if field.datasource_id not in (None, self.id):
                raise QueryError(f"{field!r} belongs to datasource {field.datasource_id}, not {self.id}")
            return field.name
        if isinstance(field, str):
            self._shared.field_type(field)
            return field
        raise QueryError(f"expected a field name or a column, got {field!r}")

    def query_proto(self) -> common_pb2.Query:
        """The Query message this view sends."""
        return self._spec.to_proto(self.id)

    # -- running queries --------------------------------------------------------------------------

    def all(self) -> QueryResult:
        """Every datapoint this view selects."""
        return self._run(self._spec, stacklevel=3)

    def head(self, n: int = 100) -> QueryResult:
        """The first ``n`` datapoints this view selects."""
        n = _row_count("head", n)
        limit = n if self._spec.limit is None else min(n, self._spec.limit)
        return self._run(self.limit(limit)._spec, stacklevel=3)

    def count(self) -> int:
        """How many datapoints this view selects."""
        # COUNT(*) in the store, in one unary call: no rows, schema or id bounds come back.
        response: ms.DescribeQueryResponse = self.connection.call_metadata(
            "DescribeQuery", ms.DescribeQueryRequest(query=self.query_proto(), count_only=True), idempotent=True
        )
        limit = self._spec.limit
        return response.total_rows if limit is None else min(response.total_rows, limit)

    def count_values(self, field: str | Column, bins: int = 0, max_values: int = 20) -> FacetCounts:
        """How often each value of ``field`` occurs in this view's result, counted in the store.

        ``bins`` > 0 gives an equal-width histogram instead for int and float fields. Returns a
        ``FacetCounts``: ``counts`` (Arrow: value, count; or low, high, count), ``total_rows``, ``missing``.
        """
        name = self._field_name(field)
        response = self.connection.call_metadata(
            "CountValues",
            ms.CountValuesRequest(query=self.query_proto(), field=name, bins=bins, max_values=max_values),
            idempotent=True,
        )
        return FacetCounts(arrow_io.read_table(response.counts), response.total_rows, response.missing)

    def get_datapoint(self, path: str) -> Any:
        """The datapoint at ``path`` with all its fields (as of this view's instant); NotFoundError if none."""
        if not isinstance(path, str):
            raise QueryError(f"a datapoint path is a str, got {type(path).__name__}")
        # The message ``QuerySpec(filter=ds["path"] == path, limit=1)`` sends, built directly: the
        # general filter's checks cost a lookup a tenth of its time.
        query = common_pb2.Query(datasource_id=self.id, limit=1)
        comparison = query.filter.comparison
        comparison.field, comparison.op = PATH_COLUMN, common_pb2.COMPARISON_OPERATOR_EQ
        comparison.value.string_value = utf8_text(path, "a string value")
        if self._spec.as_of is not None:
            query.as_of.FromDatetime(self._spec.as_of)
        result = self._read(query, 1, stacklevel=3)
        if not len(result):
            raise NotFoundError(f"no datapoint {path!r} in {self.namespace}/{self.name}")
        return result[0]

    def get_datapoints(self, paths: Iterable[str]) -> QueryResult:
        """The datapoints at ``paths``, in that order, with all their fields (as of this view's instant).

        NotFoundError, naming the first missing path and how many are missing, unless every path is a datapoint.
        """
        if isinstance(paths, str | bytes):
            raise QueryError("get_datapoints takes a list of paths; use get_datapoint for one")
        if not isinstance(paths, Iterable):
            raise QueryError(f"get_datapoints takes a list of paths, got {type(paths).__name__}")
        wanted = list(dict.fromkeys(paths))
        if any(not isinstance(path, str) for path in wanted):
            raise QueryError("datapoint paths are str")
        if not wanted:
            spec = QuerySpec(limit=0, as_of=self._spec.as_of)
            return self._run(spec, stacklevel=3)
        spec = QuerySpec(filter=self.column(PATH_COLUMN).isin(wanted), limit=len(wanted), as_of=self._spec.as_of)
        result = self._run(spec, stacklevel=3)
        table = result.arrow
        positions = pc.index_in(pa.array(wanted, pa.string()), value_set=table.column(PATH_COLUMN))
        missing = pc.is_null(positions)
        if pc.any(missing).as_py():
            first = wanted[pc.index(missing, True).as_py()]
            count = pc.sum(missing).as_py()
            raise NotFoundError(
                f"no datapoint {first!r} in {self.namespace}/{self.name}"
                + (f" ({count} of the {len(wanted)} paths are missing)" if count > 1 else "")
            )
        return QueryResult(table.take(positions), self.source, datasource=self)

    def _arrow_reader(self, native: bool = False) -> pa.RecordBatchReader:
        # A view whose limit bounds it small (``ds.limit(10).to_pandas()``, ``pa.table(ds.limit(10))``)
        # is read in one call, as ``all()`` reads it; a larger one streams from Flight, never held whole.
        limit = self._spec.limit
        if limit is not None and limit <= self.connection.direct_read_rows:
            table = self.connection.read_small(self.query_proto(), limit)
            if table is not None:
                self._warn_about_scan(table.schema, stacklevel=4)
                return table.to_reader()
        reader = self.connection.stream_query(self.query_proto(), map_errors=not native)
        self._warn_about_scan(reader.schema, stacklevel=4)
        return reader

    def _hf_source(self) -> Any:
        return self

    def _run(self, spec: QuerySpec, stacklevel: int) -> QueryResult:
        return self._read(spec.to_proto(self.id), spec.limit, stacklevel + 1)

    def _read(self, query: common_pb2.Query, limit: int | None, stacklevel: int) -> QueryResult:
        read_at = dt.datetime.now(dt.UTC)
        table = self.connection.read_result(query, limit)
        self._warn_about_scan(table.schema, stacklevel + 1)
        return QueryResult(table, self.source, datasource=self, read_at=read_at)

    def _warn_about_scan(self, schema: pa.Schema, stacklevel: int) -> None:
        state = (schema.metadata or {}).get(SCAN_STATE_METADATA_KEY, b"").decode()
        if state in (PENDING, SCANNING):
            warnings.warn(
                f"{self.namespace}/{self.name} is still being scanned ({state}): the result holds "
                "only what is indexed so far; ds.wait_until_ready() waits for the scan",
                ScanInProgressWarning,
                stacklevel=stacklevel,
            )
        elif state == FAILED:
            warnings.warn(
                f"the last scan of {self.namespace}/{self.name} failed: the result may be incomplete",
                ScanInProgressWarning,
                stacklevel=stacklevel,
            )

    # -- writing ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def metadata_context(self, create_missing: bool = False) -> Iterator[MetadataContext]:
        """Collects ``ctx.update_metadata(paths, {...})`` calls and writes them in one request on exit.

        If the block raises, nothing is written. Paths that are not datapoints yet are refused
        (``UnknownPathsError``, nothing written) unless ``create_missing=True``.
        """
        context = MetadataContext(self._shared.write_type, create_missing)
        try:
            yield context
        finally:
            context.close()
        if len(context):
            self.connection.call_metadata("UpsertMetadata", context.request(self.id))
            self._shared.stale = True

    def upload_vectors(
        self, field: str, paths: Any, vectors: Any, dtype: str | None = None, create_missing: bool = False
    ) -> Any:
        """Writes row i of the 2-D array ``vectors`` into vector field ``field`` of ``paths[i]``, atomically.
        Paths that are not datapoints yet are refused (``UnknownPathsError``) unless ``create_missing=True``."""
        return similarity.upload_vectors(self, field, paths, vectors, dtype, create_missing)

    def nearest(
        self,
        field: str,
        query: Any = None,
        *,
        path: str | None = None,
        k: int = 10,
        metric: str = "cosine",
        exact: bool = False,
    ) -> QueryResult:
        """The ``k`` datapoints of this view whose ``field`` vectors are nearest ``query`` (or the vector
        of the datapoint at ``path``), nearest first, with a ``distance`` column.

        ``metric``: "cosine" (1 − cosine similarity), "l2" (Euclidean) or "dot" (1 − inner product).
        Only datapoints this view's filter keeps, as of its instant, are candidates. ``exact`` skips
        any vector index.
        """
        return similarity.nearest(self, field, query, path=path, k=k, metric=metric, exact=exact)

    def find_duplicates(self, field: str, threshold: float, metric: str = "cosine") -> similarity.Duplicates:
        """Groups of this view's datapoints whose ``field`` vectors are within ``threshold`` of each other;
        ``ds[~ds["path"].isin(d.duplicates)]`` keeps one of each group."""
        return similarity.find_duplicates(self, field, threshold, metric)

    def sample_diverse(self, field: str, n: int, metric: str = "l2", seed: int = 0) -> list[str]:
        """``n`` paths of this view spread over their ``field`` vectors (farthest-point sampling);
        ``ds[ds["path"].isin(paths)]`` is the sample as a view, which ``save_dataset`` keeps."""
        return similarity.sample_diverse(self, field, n, metric, seed)

    def create_vector_index(
        self,
        field: str,
        metric: str = "cosine",
        connectivity: int = 0,
        expansion_add: int = 0,
        expansion_search: int = 0,
        timeout: float | None = 3600.0,
    ) -> dict[str, Any]:
        """Builds (or rebuilds) an approximate index over vector field ``field`` for ``nearest`` searches
        with this ``metric``. Searches stay correct under any filter and see writes made after the build
        (compared exactly until the next build). 0 takes the service's default for a parameter;
        ``timeout`` bounds the build (seconds)."""
        return similarity.create_vector_index(
            self, field, metric, connectivity, expansion_add, expansion_search, timeout
        )

    def upload_metadata_from_dataframe(
        self, df: Any, path_column: str | int | None = None, create_missing: bool = False
    ) -> Any:
        """Writes a table's columns as fields of the datapoints named in its path column, atomically.

        ``df`` is any Arrow producer (see ``upload``). ``path_column`` is a column name or position
        (the first column by default). Missing values (None/NaN/NaT) leave fields untouched. Paths
        that are not datapoints yet are refused (``UnknownPathsError``, nothing written) unless
        ``create_missing=True``, which creates them. Returns the service's counts when it sends them.
        """
        return self._upload(df, path_column, create_missing=create_missing)

    def upload(self, data: Any, path_column: str | int = PATH_COLUMN, *, create_missing: bool = False) -> Any:
        """Writes ``data``'s columns as fields of the datapoints named in ``path_column``, atomically.

        ``data`` is a pandas or polars DataFrame, a pyarrow Table or RecordBatchReader, a DuckDB
        relation, a Hugging Face ``datasets.Dataset`` or anything with ``__arrow_c_stream__``; anything
        else raises TypeError. A stream (reader, relation, other producer) is sent batch by batch as it
        is read, so it may be larger than memory; it still commits only at its end, and if the
        producer raises midway nothing is written. Paths the datasource does not know yet are refused
        (``UnknownPathsError``) unless ``create_missing=True``. A Ray Dataset is sent from its workers,
        block by block, and committed once every block is in (see ``thresher.ray_engine.upload_tasks``).
        """
        if _is_ray_dataset(data):
            from thresher.ray_engine.upload_tasks import upload_ray_dataset

            return upload_ray_dataset(self, data, path_column, create_missing=create_missing)
        return self._upload(data, path_column, create_missing=create_missing)

    def _upload(self, data: Any, path_column: str | int | None, **options: Any) -> Any:
        table, path_name = upload.prepare(data, path_column, self._shared.write_types)
        if isinstance(table, pa.Table) and table.num_rows == 0:
            return None
        response = self.connection.upsert_table(self.id, table, path_name, **options)
        self._shared.stale = True
        return response

    def to_ray_dataset(self, **read_options: Any) -> Any:
        """The rows this view selects as a Ray Dataset, one read task per Flight partition; the driver
        only plans (see ``thresher.ray_engine.read``)."""
        from thresher.ray_engine.read import to_ray_dataset

        return to_ray_dataset(self, **read_options)

    def import_annotations(
        self, format: str, path_or_uri: str | os.PathLike[str], field: str, match: Any = "auto", kind: str | None = None
    ) -> Any:
        """Reads annotations (``"coco"``, ``"yolo"``, ``"voc"``, ``"cvat"``, ``"labelstudio"``) into ``field``.

        Images are matched to datapoints by ``match``: ``"auto"`` (same path, then without extension,
        then by a path suffix, then by file name), ``"path"``, ``"stem"``, ``"name"`` or a function from
        the image name to a datapoint path. ``kind`` picks what to read where a format holds several
        (``"detections"`` or ``"polylines"``). Returns an ImportReport listing unmatched files.
        """
        from thresher import label_io

        return label_io.import_annotations(self, format, path_or_uri, field, match, kind)

    def define_fields(
        self, fields: Mapping[str, FieldType | str], tags: Mapping[str, Iterable[str]] | None = None
    ) -> dict[str, FieldType]:
        """Declares fields (name → type) ahead of any write; existing fields must keep their type."""
        tags = tags or {}
        request = ms.DefineFieldsRequest(
            datasource_id=self.id,
            fields=[
                common_pb2.Field(name=name, type=FieldType(kind).proto, tags=list(tags.get(name, ())))
                for name, kind in fields.items()
            ],
        )
        response = self.connection.call_metadata("DefineFields", request)
        self._shared.refresh()
        return {field.name: FieldType.from_proto(field.type) for field in response.fields}

    def delete_metadata(self, paths: Any, fields: str | Iterable[str] | None = None) -> int:
        """Removes ``fields``' values (every field when None) from the datapoints in ``paths``."""
        names = [fields] if isinstance(fields, str) else list(fields or ())
        for name in names:
            self._shared.field_type(name)
        request = ms.DeleteMetadataRequest(datasource_id=self.id, paths=paths_of(paths), fields=names)
        response: ms.DeleteMetadataResponse = self.connection.call_metadata("DeleteMetadata", request)
        return response.values_deleted

    def delete_datapoints(self, paths: Any) -> int:
        """Deletes the datapoints in ``paths`` (paths, Datapoints or a QueryResult)."""
        request = ms.DeleteDatapointsRequest(datasource_id=self.id, paths=paths_of(paths))
        response: ms.DeleteDatapointsResponse = self.connection.call_metadata("DeleteDatapoints", request)
        return response.datapoints_deleted

    def save_dataset(self, name: str, as_of: Any = None) -> Datasource:
        """Saves this view's query as dataset ``name`` in the datasource's namespace.

        ``as_of`` pins the dataset to an instant; unpinned, it reads the current state when reopened,
        and the time it was saved is kept so ``get_dataset(..., as_of="saved")`` reproduces it.
        """
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError("a dataset name must be a non-empty string")
        view = self if as_of is None else self.as_of(as_of)
        response = self.connection.call_metadata(
            "SaveDataset", ms.SaveDatasetRequest(namespace=self.namespace, name=name, query=view.query_proto())
        )
        return self._view(view._spec, response.dataset)

    @property
    def saved_at(self) -> Any:
        """When the dataset this view was loaded from was saved (None for a plain view)."""
        return self._dataset.created_at.ToDatetime(tzinfo=dt.UTC) if self._dataset is not None else None

    def delete_source(self) -> None:
        """Deletes the datasource with its datapoints and metadata (the files in storage stay)."""
        self.connection.call_metadata("DeleteDatasource", ms.DeleteDatasourceRequest(id=self.id))


def _is_ray_dataset(data: Any) -> bool:
    """Whether ``data`` is a Ray Dataset; imports Ray only for an object whose class comes from Ray."""
    module = type(data).__module__
    if module != "ray" and not module.startswith("ray."):
        return False
    import ray.data

    return isinstance(data, ray.data.Dataset)


# A query's limit is a signed 64-bit integer on the wire (and in both stores).
_MAX_ROWS = 2**63 - 1


def _row_count(name: str, n: object) -> int:
    """``n`` checked as a count of rows for ``name`` (``limit``, ``head``); QueryError naming it otherwise."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise QueryError(f"{name} takes a non-negative int, got {n!r}")
    if n > _MAX_ROWS:
        raise QueryError(f"{name} takes at most {_MAX_ROWS:,} rows (2**63 - 1), got {n:,}")
    return n

"""The catalog lookups every store answers with the same SQL: namespaces, saved datasets, bag datasets.

A store mixes this in and supplies its SQL dialect (for the parameter placeholders) and ``_rows``,
which runs a read-only statement and returns its rows as tuples.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import NotFound
from ..query_compiler import Dialect
from .records import BagDatasetRecord, DatasetRecord, NamespaceRecord

NAMESPACE_COLUMNS = "name, repository_uri, created_at"
DATASET_COLUMNS = "id, namespace, name, datasource_id, query, created_at"
BAG_DATASET_COLUMNS = "namespace, name, uri, registered_at"


class CatalogReads:
    dialect: Dialect

    def _rows(self, sql: str, params: Sequence = ()) -> list[tuple]:
        raise NotImplementedError

    def _select(self, sql: str, params: Sequence) -> list[tuple]:
        """Runs ``sql`` whose ``{}`` marks stand for ``params``, in the dialect's placeholder style."""
        return self._rows(sql.format(*(self.dialect.placeholder(i + 1) for i in range(len(params)))), params)

    def get_namespace(self, name: str) -> NamespaceRecord:
        rows = self._select(f"SELECT {NAMESPACE_COLUMNS} FROM namespaces WHERE name = {{}}", [name])
        if not rows:
            raise NotFound(f"namespace {name!r} not found")
        return NamespaceRecord(*rows[0])

    def list_namespaces(self, offset: int, limit: int) -> list[NamespaceRecord]:
        rows = self._select(f"SELECT {NAMESPACE_COLUMNS} FROM namespaces ORDER BY name LIMIT {{}} OFFSET {{}}",
                            [limit, offset])
        return [NamespaceRecord(*row) for row in rows]

    def get_dataset(self, dataset_id: int) -> DatasetRecord:
        rows = self._select(f"SELECT {DATASET_COLUMNS} FROM datasets WHERE id = {{}}", [dataset_id])
        if not rows:
            raise NotFound(f"dataset {dataset_id} not found")
        return DatasetRecord(*rows[0])

    def find_dataset(self, namespace: str, name: str) -> DatasetRecord:
        rows = self._select(f"SELECT {DATASET_COLUMNS} FROM datasets WHERE namespace = {{}} AND name = {{}}",
                            [namespace, name])
        if not rows:
            raise NotFound(f"dataset {name!r} not found in namespace {namespace!r}")
        return DatasetRecord(*rows[0])

    def list_datasets(self, namespace: str, offset: int, limit: int) -> list[DatasetRecord]:
        rows = self._select(f"SELECT {DATASET_COLUMNS} FROM datasets WHERE namespace = {{}} "
                            "ORDER BY id LIMIT {} OFFSET {}", [namespace, limit, offset])
        return [DatasetRecord(*row) for row in rows]

    def find_bag_dataset(self, namespace: str, name: str) -> BagDatasetRecord:
        rows = self._select(f"SELECT {BAG_DATASET_COLUMNS} FROM bag_datasets WHERE namespace = {{}} AND name = {{}}",
                            [namespace, name])
        if not rows:
            raise NotFound(f"bag dataset {name!r} not found in namespace {namespace!r}")
        return BagDatasetRecord(*rows[0])

    def list_bag_datasets(self, namespace: str, offset: int, limit: int) -> list[BagDatasetRecord]:
        rows = self._select(f"SELECT {BAG_DATASET_COLUMNS} FROM bag_datasets WHERE namespace = {{}} "
                            "ORDER BY name LIMIT {} OFFSET {}", [namespace, limit, offset])
        return [BagDatasetRecord(*row) for row in rows]

"""Saved datasets: a named query over a datasource (``ds.save_dataset(name)`` saves one)."""

from __future__ import annotations

import os
from typing import Any

from thresher.connection import Connection, resolve
from thresher.datasource import Datasource
from thresher.query import QuerySpec
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as ms

_PAGE_SIZE = 500


def get_dataset(
    namespace: str, name: str, as_of: Any = "pinned", *, connection: Connection | None = None
) -> Datasource:
    """Dataset ``name`` as a datasource view with its saved query applied. NotFoundError if none.

    ``as_of`` picks the instant it reads: ``"pinned"`` (its pinned time, or now if it has none),
    ``"now"``, ``"saved"`` (the time it was saved, to reproduce it), or a datetime / Unix time.
    """
    conn = resolve(connection)
    dataset = conn.call_metadata(
        "GetDataset", ms.GetDatasetRequest(namespace=namespace, name=name), idempotent=True
    ).dataset
    view = _view(conn, dataset, {})
    if as_of == "pinned":
        return view
    if as_of == "now":
        return view._with(as_of=None)
    if as_of == "saved":
        return view.as_of(view.saved_at)
    return view.as_of(as_of)


def get_datasets(namespace: str, *, connection: Connection | None = None) -> list[Datasource]:
    """Every dataset in ``namespace``, each as a datasource view with its query applied."""
    conn = resolve(connection)
    sources: dict[int, common_pb2.Datasource] = {}
    views: list[Datasource] = []
    token = ""
    while True:
        response = conn.call_metadata(
            "ListDatasets",
            ms.ListDatasetsRequest(namespace=namespace, page_size=_PAGE_SIZE, page_token=token),
            idempotent=True,
        )
        views.extend(_view(conn, dataset, sources) for dataset in response.datasets)
        token = response.next_page_token
        if not token:
            return views


def delete_dataset(namespace: str, name: str, *, connection: Connection | None = None) -> None:
    """Deletes dataset ``name`` (its datasource and data stay). NotFoundError if none."""
    conn = resolve(connection)
    dataset = conn.call_metadata(
        "GetDataset", ms.GetDatasetRequest(namespace=namespace, name=name), idempotent=True
    ).dataset
    conn.call_metadata("DeleteDataset", ms.DeleteDatasetRequest(id=dataset.id))


def _view(conn: Connection, dataset: common_pb2.Dataset, sources: dict[int, common_pb2.Datasource]) -> Datasource:
    # Datasets of one datasource share its description: fetch it once per listing.
    if dataset.datasource_id not in sources:
        sources[dataset.datasource_id] = conn.call_metadata(
            "GetDatasource", ms.GetDatasourceRequest(id=dataset.datasource_id), idempotent=True
        ).datasource
    return Datasource(conn, sources[dataset.datasource_id], QuerySpec.from_proto(dataset.query), dataset)


# -- bag datasets: exported query results the flight service serves by name ------------------------------


def register_export(namespace: str, name: str, target: str, *, connection: Connection | None = None) -> ms.BagDataset:
    """Registers the bag dataset at ``target`` (a path the flight service can read, or an ``s3://`` /
    ``gs://`` URI; see ``QueryResult.export``) as ``namespace/name``, so that flight serves it by that name
    (``thresher.sources.Remote("namespace/name")``). Registering a name again re-points it; a flight
    server that served the name in the last few seconds (``shard_cache.LOCATION_SECONDS``) may serve the
    old target until then."""
    uri = str(target)
    if "://" not in uri:
        # The flight service resolves the path itself: never hand it one relative to this process.
        uri = os.path.abspath(uri)
    response: ms.RegisterBagDatasetResponse = resolve(connection).call_metadata(
        "RegisterBagDataset", ms.RegisterBagDatasetRequest(namespace=namespace, name=name, uri=uri)
    )
    return response.bag_dataset


def get_export(namespace: str, name: str, *, connection: Connection | None = None) -> ms.BagDataset:
    """The registered bag dataset ``namespace/name`` (its ``uri``, ``registered_at``). NotFoundError if none."""
    response: ms.GetBagDatasetResponse = resolve(connection).call_metadata(
        "GetBagDataset", ms.GetBagDatasetRequest(namespace=namespace, name=name), idempotent=True
    )
    return response.bag_dataset


def list_exports(namespace: str, *, connection: Connection | None = None) -> list[ms.BagDataset]:
    """Every bag dataset registered in ``namespace``, by name."""
    conn = resolve(connection)
    found, token = [], ""
    while True:
        response = conn.call_metadata(
            "ListBagDatasets",
            ms.ListBagDatasetsRequest(namespace=namespace, page_size=_PAGE_SIZE, page_token=token),
            idempotent=True,
        )
        found.extend(response.bag_datasets)
        token = response.next_page_token
        if not token:
            return found

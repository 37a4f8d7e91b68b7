"""RegisterBagDataset / GetBagDataset / ListBagDatasets on both stores (DuckDB and PostgreSQL)."""

from __future__ import annotations

import grpc
import pytest

from thresher.v1 import metadata_service_pb2 as ms


def test_register_get_list_bag_datasets(metadata_stub, namespace):
    first = metadata_stub.RegisterBagDataset(
        ms.RegisterBagDatasetRequest(namespace=namespace, name="train", uri="s3://bucket/exports/train")
    ).bag_dataset
    assert (first.namespace, first.name, first.uri) == (namespace, "train", "s3://bucket/exports/train")
    metadata_stub.RegisterBagDataset(ms.RegisterBagDatasetRequest(namespace=namespace, name="eval", uri="/data/eval"))
    # Registering a name again re-points it.
    metadata_stub.RegisterBagDataset(ms.RegisterBagDatasetRequest(namespace=namespace, name="train", uri="/data/t2"))
    got = metadata_stub.GetBagDataset(ms.GetBagDatasetRequest(namespace=namespace, name="train")).bag_dataset
    assert got.uri == "/data/t2" and got.registered_at.seconds >= first.registered_at.seconds
    listed = metadata_stub.ListBagDatasets(ms.ListBagDatasetsRequest(namespace=namespace, page_size=1))
    assert [b.name for b in listed.bag_datasets] == ["eval"] and listed.next_page_token
    rest = metadata_stub.ListBagDatasets(
        ms.ListBagDatasetsRequest(namespace=namespace, page_token=listed.next_page_token)
    )
    assert [b.name for b in rest.bag_datasets] == ["train"]


@pytest.mark.parametrize(
    "request_, code",
    [
        (ms.RegisterBagDatasetRequest(namespace="bad", name="x", uri="/a"), grpc.StatusCode.INVALID_ARGUMENT),
        (ms.RegisterBagDatasetRequest(namespace="a/b", name="x/y", uri="/a"), grpc.StatusCode.INVALID_ARGUMENT),
        (ms.RegisterBagDatasetRequest(namespace="a/b", name="x", uri=""), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_bad_registrations_are_refused(metadata_stub, request_, code):
    with pytest.raises(grpc.RpcError) as caught:
        metadata_stub.RegisterBagDataset(request_)
    assert caught.value.code() == code


def test_unknown_bag_dataset_is_not_found(metadata_stub, namespace):
    with pytest.raises(grpc.RpcError) as caught:
        metadata_stub.GetBagDataset(ms.GetBagDatasetRequest(namespace=namespace, name="none"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND

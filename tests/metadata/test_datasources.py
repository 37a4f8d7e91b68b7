import grpc
import pytest

from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as pb


def _code(excinfo) -> grpc.StatusCode:
    return excinfo.value.code()


def test_create_get_and_duplicate(meta, metadata_stub, namespace):
    created = meta.datasource("images")
    assert created.id > 0 and created.namespace == namespace and created.scan.state == common_pb2.SCAN_STATE_PENDING
    by_id = metadata_stub.GetDatasource(pb.GetDatasourceRequest(id=created.id)).datasource
    by_name = metadata_stub.GetDatasource(pb.GetDatasourceRequest(namespace=namespace, name="images")).datasource
    assert by_id == by_name == created
    with pytest.raises(grpc.RpcError) as excinfo:
        meta.datasource("images")
    assert _code(excinfo) == grpc.StatusCode.ALREADY_EXISTS and "'images'" in excinfo.value.details()


def test_get_or_create_returns_existing_and_rejects_other_source(metadata_stub, namespace):
    request = pb.GetOrCreateDatasourceRequest(namespace=namespace, name="d", source_uri="file:///a")
    first = metadata_stub.GetOrCreateDatasource(request)
    second = metadata_stub.GetOrCreateDatasource(request)
    assert first.created and not second.created and first.datasource.id == second.datasource.id
    with pytest.raises(grpc.RpcError) as excinfo:
        metadata_stub.GetOrCreateDatasource(
            pb.GetOrCreateDatasourceRequest(namespace=namespace, name="d", source_uri="file:///b")
        )
    assert _code(excinfo) == grpc.StatusCode.ALREADY_EXISTS and "file:///a" in excinfo.value.details()


def test_unknown_datasource_is_not_found_naming_it(metadata_stub, namespace):
    with pytest.raises(grpc.RpcError) as excinfo:
        metadata_stub.GetDatasource(pb.GetDatasourceRequest(namespace=namespace, name="ghost"))
    assert _code(excinfo) == grpc.StatusCode.NOT_FOUND and "'ghost'" in excinfo.value.details()
    with pytest.raises(grpc.RpcError) as excinfo:
        metadata_stub.GetDatasource(pb.GetDatasourceRequest(id=987654))
    assert _code(excinfo) == grpc.StatusCode.NOT_FOUND and "987654" in excinfo.value.details()


@pytest.mark.parametrize(
    "namespace_name, name",
    [("no-slash", "x"), ("a/b/c", "x"), ("", "x"), ("ok/ns", "a/b"), ("ok/ns", ""), ("ok/ns", "tab\there")],
)
def test_bad_names_are_invalid_argument(metadata_stub, namespace_name, name):
    with pytest.raises(grpc.RpcError) as excinfo:
        metadata_stub.CreateDatasource(
            pb.CreateDatasourceRequest(namespace=namespace_name, name=name, source_uri="file:///x")
        )
    assert _code(excinfo) == grpc.StatusCode.INVALID_ARGUMENT


def test_list_pages_through_every_datasource(meta, metadata_stub, namespace):
    ids = {meta.datasource(f"d{i}").id for i in range(5)}
    seen, token, pages = set(), "", 0
    while True:
        response = metadata_stub.ListDatasources(
            pb.ListDatasourcesRequest(namespace=namespace, page_size=2, page_token=token)
        )
        seen |= {d.id for d in response.datasources}
        pages += 1
        token = response.next_page_token
        if not token:
            break
    assert seen == ids and pages == 3
    with pytest.raises(grpc.RpcError) as excinfo:
        metadata_stub.ListDatasources(pb.ListDatasourcesRequest(namespace=namespace, page_token="garbage"))
    assert _code(excinfo) == grpc.StatusCode.INVALID_ARGUMENT


def test_delete_removes_datasource_metadata_and_datasets(meta, metadata_stub, namespace):
    import pyarrow as pa

    source = meta.datasource()
    meta.upload(source.id, pa.table({"path": ["a"], "x": [1]}))
    metadata_stub.SaveDataset(
        pb.SaveDatasetRequest(namespace=namespace, name="saved", query=common_pb2.Query(datasource_id=source.id))
    )
    metadata_stub.DeleteDatasource(pb.DeleteDatasourceRequest(id=source.id))
    for request in (pb.GetDatasourceRequest(id=source.id), pb.GetDatasetRequest(namespace=namespace, name="saved")):
        with pytest.raises(grpc.RpcError) as excinfo:
            (metadata_stub.GetDatasource if isinstance(request, pb.GetDatasourceRequest) else metadata_stub.GetDataset)(
                request
            )
        assert _code(excinfo) == grpc.StatusCode.NOT_FOUND
    recreated = meta.datasource()
    assert meta.query(recreated.id).empty


def test_scan_status_round_trips_and_reaches_query_schema(meta, metadata_stub):
    source = meta.datasource()
    scan = common_pb2.ScanStatus(state=common_pb2.SCAN_STATE_SCANNING, files_seen=7, datapoints_added=5)
    updated = metadata_stub.UpdateScanStatus(pb.UpdateScanStatusRequest(datasource_id=source.id, scan=scan)).datasource
    assert updated.scan.state == common_pb2.SCAN_STATE_SCANNING and updated.scan.files_seen == 7
    table = meta.query_table(common_pb2.Query(datasource_id=source.id))
    assert table.schema.metadata[b"thresher.scan_state"] == b"scanning"


def test_health_and_reflection_are_served(metadata_server):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    from thresher.core.transport import open_channel

    channel = open_channel(metadata_server[0])
    status = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="thresher.v1.MetadataService")
    )
    assert status.status == health_pb2.HealthCheckResponse.SERVING
    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert "thresher.v1.MetadataService" in services
    channel.close()

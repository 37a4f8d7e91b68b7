"""Bearer tokens on every gRPC method and Flight verb: missing, wrong and out-of-scope tokens are refused."""

from __future__ import annotations

import os

import grpc
import pyarrow as pa
import pyarrow.flight as fl
import pytest

from thresher.core.arrow_io import upsert_table_requests
from thresher.core.transport import open_channel
from thresher.core.types import to_proto_value
from thresher.services.auth import InsecureBindError, TokenConfigError, TokenTable, is_loopback
from thresher.v1 import common_pb2, flight_pb2, metadata_service_pb2_grpc, scanner_service_pb2_grpc
from thresher.v1 import metadata_service_pb2 as pb
from thresher.v1 import scanner_service_pb2 as spb

NAMESPACE = f"team/auth-{os.getpid()}"
READS = {
    "GetNamespace",
    "ListNamespaces",
    "GetDatasource",
    "ListDatasources",
    "ExecuteQuery",
    "DescribeQuery",
    "CountValues",
    "ReadQuery",
    "ExecuteSql",
    "DescribeSql",
    "ListSqlTables",
    "GetHistory",
    "ListChanges",
    "GetDataset",
    "ListDatasets",
    "GetBagDataset",
    "ListBagDatasets",
}


def _bearer(token: str | None):
    return (("authorization", f"Bearer {token}"),) if token else ()


@pytest.fixture(scope="module")
def world(secured):
    """A datasource with data, a saved dataset and a bag dataset in NAMESPACE, made by the admin."""
    channel = open_channel(secured.metadata_address)
    stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
    admin = _bearer("admin-token")
    source = stub.CreateDatasource(
        pb.CreateDatasourceRequest(namespace=NAMESPACE, name="ds", source_uri="file:///x"), metadata=admin
    ).datasource
    stub.UpsertMetadata(
        pb.UpsertMetadataRequest(
            datasource_id=source.id,
            datapoints=[pb.DatapointValues(path="a", values={"n": to_proto_value(1)})],
            create_missing=True,
        ),
        metadata=admin,
    )
    query = common_pb2.Query(datasource_id=source.id)
    dataset = stub.SaveDataset(
        pb.SaveDatasetRequest(namespace=NAMESPACE, name="all", query=query), metadata=admin
    ).dataset
    stub.RegisterBagDataset(
        pb.RegisterBagDatasetRequest(namespace=NAMESPACE, name="bag", uri="/data/bag"), metadata=admin
    )
    yield stub, source.id, dataset.id
    channel.close()


def _metadata_requests(datasource_id: int, dataset_id: int) -> dict:
    """One request per MetadataService method, each touching NAMESPACE."""
    query = common_pb2.Query(datasource_id=datasource_id)
    table = pa.table({"path": ["a"], "n": [2]})
    upload = list(upsert_table_requests(datasource_id, "path", table.schema, table.to_batches(), create_missing=True))
    return {
        "CreateNamespace": pb.CreateNamespaceRequest(name=f"{NAMESPACE}x"),
        "GetNamespace": pb.GetNamespaceRequest(name=NAMESPACE),
        "ListNamespaces": pb.ListNamespacesRequest(),
        "CreateDatasource": pb.CreateDatasourceRequest(namespace=NAMESPACE, name="new", source_uri="file:///y"),
        "GetDatasource": pb.GetDatasourceRequest(id=datasource_id),
        "GetOrCreateDatasource": pb.GetOrCreateDatasourceRequest(
            namespace=NAMESPACE, name="ds", source_uri="file:///x"
        ),
        "ListDatasources": pb.ListDatasourcesRequest(namespace=NAMESPACE),
        "DeleteDatasource": pb.DeleteDatasourceRequest(id=datasource_id),
        "UpdateScanStatus": pb.UpdateScanStatusRequest(
            datasource_id=datasource_id, scan=common_pb2.ScanStatus(state=common_pb2.SCAN_STATE_READY)
        ),
        "DefineFields": pb.DefineFieldsRequest(
            datasource_id=datasource_id, fields=[common_pb2.Field(name="m", type=common_pb2.FIELD_TYPE_INT)]
        ),
        "UpsertMetadata": pb.UpsertMetadataRequest(
            datasource_id=datasource_id,
            datapoints=[pb.DatapointValues(path="a", values={"n": to_proto_value(3)})],
            create_missing=True,
        ),
        "UpsertTable": upload,
        "CommitStagedUpload": pb.CommitStagedUploadRequest(
            staging_session="s", datasource_id=datasource_id, block_count=1
        ),
        "AbortStagedUpload": pb.AbortStagedUploadRequest(staging_session="s", datasource_id=datasource_id),
        "DeleteMetadata": pb.DeleteMetadataRequest(datasource_id=datasource_id, paths=["a"], fields=["n"]),
        "DeleteDatapoints": pb.DeleteDatapointsRequest(datasource_id=datasource_id, paths=["a"]),
        "ExecuteQuery": pb.ExecuteQueryRequest(query=query),
        "DescribeQuery": pb.DescribeQueryRequest(query=query),
        "CountValues": pb.CountValuesRequest(query=query, field="n"),
        "ReadQuery": pb.ReadQueryRequest(query=query, max_rows=10),
        "ExecuteSql": pb.ExecuteSqlRequest(sql=f'SELECT * FROM "{NAMESPACE}".ds'),
        "DescribeSql": pb.DescribeSqlRequest(sql=f'SELECT * FROM "{NAMESPACE}".ds'),
        "ListSqlTables": pb.ListSqlTablesRequest(namespace=NAMESPACE),
        "GetHistory": pb.GetHistoryRequest(datasource_id=datasource_id, path="a"),
        "ListChanges": pb.ListChangesRequest(datasource_id=datasource_id),
        "SaveDataset": pb.SaveDatasetRequest(namespace=NAMESPACE, name="another", query=query),
        "GetDataset": pb.GetDatasetRequest(id=dataset_id),
        "ListDatasets": pb.ListDatasetsRequest(namespace=NAMESPACE),
        "DeleteDataset": pb.DeleteDatasetRequest(id=dataset_id),
        "RegisterBagDataset": pb.RegisterBagDatasetRequest(namespace=NAMESPACE, name="bag", uri="/data/bag"),
        "GetBagDataset": pb.GetBagDatasetRequest(namespace=NAMESPACE, name="bag"),
        "ListBagDatasets": pb.ListBagDatasetsRequest(namespace=NAMESPACE),
        "CreateVectorIndex": pb.CreateVectorIndexRequest(datasource_id=datasource_id, field="emb"),
    }


def _call(stub, method: str, request, token: str | None):
    result = getattr(stub, method)(iter(request) if isinstance(request, list) else request, metadata=_bearer(token))
    return list(result) if method in ("ExecuteQuery", "ExecuteSql", "GetHistory", "ListChanges") else result


def _code(stub, method, request, token) -> grpc.StatusCode:
    try:
        _call(stub, method, request, token)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_every_metadata_method_is_covered_here(world):
    _, datasource_id, dataset_id = world
    service = pb.DESCRIPTOR.services_by_name["MetadataService"]
    assert set(_metadata_requests(datasource_id, dataset_id)) == {m.name for m in service.methods}


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_every_metadata_method_refuses_a_missing_or_wrong_token(world, token):
    stub, datasource_id, dataset_id = world
    for method, request in _metadata_requests(datasource_id, dataset_id).items():
        assert _code(stub, method, request, token) == grpc.StatusCode.UNAUTHENTICATED, method


def test_every_metadata_method_refuses_a_token_scoped_elsewhere(world):
    stub, datasource_id, dataset_id = world
    for method, request in _metadata_requests(datasource_id, dataset_id).items():
        if method == "ListNamespaces":
            listed = [n.name for n in _call(stub, method, request, "bob-token").namespaces]
            assert NAMESPACE not in listed and all(name.startswith("other/") for name in listed)
            continue
        if method in ("ExecuteSql", "DescribeSql"):
            # SQL does not see a namespace the token may not read: the table does not exist for it.
            assert _code(stub, method, request, "bob-token") == grpc.StatusCode.INVALID_ARGUMENT, method
            continue
        assert _code(stub, method, request, "bob-token") == grpc.StatusCode.PERMISSION_DENIED, method


def test_a_read_token_reads_and_cannot_write(world):
    stub, datasource_id, dataset_id = world
    for method, request in _metadata_requests(datasource_id, dataset_id).items():
        expected = grpc.StatusCode.OK if method in READS else grpc.StatusCode.PERMISSION_DENIED
        assert _code(stub, method, request, "reader-token") == expected, method


def test_writes_are_recorded_under_the_token_subject(secured, world):
    stub, datasource_id, _ = world
    # A client claiming another name in the header is recorded under its token's subject.
    stub.UpsertMetadata(
        pb.UpsertMetadataRequest(
            datasource_id=datasource_id,
            datapoints=[pb.DatapointValues(path="b", values={"n": to_proto_value(5)})],
            create_missing=True,
        ),
        metadata=_bearer("alice-token") + (("thresher-user", "mallory"),),
    )
    changes = secured.stores[0].changes(datasource_id, None, None).to_pylist()
    assert [row["actor"] for row in changes if row["path"] == "b"] == ["alice"]


def test_scanner_methods_refuse_missing_wrong_and_out_of_scope_tokens(secured, world):
    _, datasource_id, _ = world
    channel = open_channel(secured.scanner_address)
    stub = scanner_service_pb2_grpc.ScannerServiceStub(channel)
    calls = {
        "StartScan": spb.StartScanRequest(datasource_id=datasource_id),
        "GetScanStatus": spb.GetScanStatusRequest(datasource_id=datasource_id),
    }
    assert set(calls) == {m.name for m in spb.DESCRIPTOR.services_by_name["ScannerService"].methods}
    for method, request in calls.items():
        for token, code in (
            (None, grpc.StatusCode.UNAUTHENTICATED),
            ("not-a-token", grpc.StatusCode.UNAUTHENTICATED),
            ("bob-token", grpc.StatusCode.PERMISSION_DENIED),
        ):
            assert _code(stub, method, request, token) == code, (method, token)
    assert _code(stub, "StartScan", calls["StartScan"], "reader-token") == grpc.StatusCode.PERMISSION_DENIED
    assert _code(stub, "GetScanStatus", calls["GetScanStatus"], "reader-token") == grpc.StatusCode.OK
    channel.close()


def test_health_checks_need_no_token(secured):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    for address in (secured.metadata_address, secured.scanner_address):
        channel = open_channel(address)
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        channel.close()


def _flight_verbs(datasource_id: int):
    """Each Flight verb as a function of call options."""
    query = common_pb2.Query(datasource_id=datasource_id)
    ticket = fl.Ticket(flight_pb2.FlightTicket(query=flight_pb2.QueryTicket(query=query)).SerializeToString())
    by_path = fl.FlightDescriptor.for_path(NAMESPACE, "datasources", "ds")
    upsert = fl.FlightDescriptor.for_command(
        flight_pb2.FlightCommand(
            upsert=flight_pb2.UpsertCommand(datasource_id=datasource_id, path_column="path", create_missing=True)
        ).SerializeToString()
    )

    def do_put(client, options):
        table = pa.table({"path": ["a"], "n": [9]})
        writer, reader = client.do_put(upsert, table.schema, options=options)
        with writer:
            writer.write_table(table)
            writer.done_writing()
            reader.read()

    def do_exchange(client, options):
        writer, reader = client.do_exchange(by_path, options=options)
        with writer:
            reader.read_all()

    return {
        "DoGet": lambda client, options: client.do_get(ticket, options=options).read_all(),
        "DoPut": do_put,
        "GetFlightInfo": lambda client, options: client.get_flight_info(by_path, options=options),
        "GetSchema": lambda client, options: client.get_schema(by_path, options=options),
        "ListFlights": lambda client, options: list(client.list_flights(NAMESPACE.encode(), options=options)),
        "DoAction": lambda client, options: list(client.do_action(fl.Action("anything", b""), options=options)),
        "DoExchange": do_exchange,
    }


def _refused(call, kind: type[fl.FlightError], code: str) -> None:
    """``call`` fails with ``kind``, or with a generic Arrow error naming ``code``: pyarrow's GetSchema
    passes a server's Flight error on as an OSError or ArrowException carrying the message."""
    try:
        call()
    except kind:
        return
    except (OSError, pa.ArrowException) as error:
        assert code in str(error), error
        return
    raise AssertionError(f"not refused with {code}")


def _options(token: str | None) -> fl.FlightCallOptions:
    return fl.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())] if token else [])


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_every_flight_verb_refuses_a_missing_or_wrong_token(secured, world, token):
    with fl.connect(f"grpc://{secured.flight_address}") as client:
        for call in _flight_verbs(world[1]).values():
            _refused(lambda: call(client, _options(token)), fl.FlightUnauthenticatedError, "UNAUTHENTICATED")
        with pytest.raises(fl.FlightUnauthenticatedError):
            client.authenticate_basic_token("alice", "not-a-token")
        _answers_without_token(client)


def _answers_without_token(client: fl.FlightClient) -> None:
    """ListActions, the health check, is answered (if only with 'not implemented') without a token."""
    try:
        client.list_actions()
    except pa.ArrowNotImplementedError:
        pass


def test_flight_verbs_on_a_namespace_refuse_a_token_scoped_elsewhere(secured, world):
    verbs = _flight_verbs(world[1])
    with fl.connect(f"grpc://{secured.flight_address}") as client:
        for verb in ("DoGet", "DoPut", "GetFlightInfo", "GetSchema", "ListFlights"):
            _refused(
                lambda: verbs[verb](client, _options("bob-token")), fl.FlightUnauthorizedError, "PERMISSION_DENIED"
            )
        assert all(NAMESPACE not in str(info.descriptor) for info in client.list_flights(options=_options("bob-token")))
        with pytest.raises(fl.FlightUnauthorizedError):
            verbs["DoPut"](client, _options("reader-token"))
        assert verbs["DoGet"](client, _options("reader-token")).num_rows >= 1


def test_the_metadata_data_port_checks_tokens_and_namespaces_as_grpc_does(secured, world):
    request = pb.ExecuteQueryRequest(query=common_pb2.Query(datasource_id=world[1]))
    ticket = fl.Ticket(request.SerializeToString())
    with fl.connect(f"grpc://{secured.data_addresses[0]}") as port:
        for token in (None, "not-a-token"):
            _refused(
                lambda: port.do_get(ticket, options=_options(token)).read_all(),
                fl.FlightUnauthenticatedError,
                "UNAUTHENTICATED",
            )
        with pytest.raises(fl.FlightUnauthorizedError, match="PERMISSION_DENIED: 'bob' may not read namespace"):
            port.do_get(ticket, options=_options("bob-token")).read_all()
        assert port.do_get(ticket, options=_options("reader-token")).read_all().num_rows >= 1
        with pytest.raises(
            fl.FlightError, match="INVALID_ARGUMENT: a data-port ticket is a serialized ExecuteQueryRequest"
        ):
            port.do_get(fl.Ticket(b"\xff\xff"), options=_options("reader-token")).read_all()


def test_basic_handshake_gives_the_bearer_token_that_adbc_uses(secured, world):
    with fl.connect(f"grpc://{secured.flight_address}") as client:
        header = client.authenticate_basic_token("alice", "alice-token")
        assert header == (b"authorization", b"Bearer alice-token")
        assert _flight_verbs(world[1])["DoGet"](client, fl.FlightCallOptions(headers=[header])).num_rows >= 1
        with pytest.raises(fl.FlightUnauthenticatedError):
            client.authenticate_basic_token("bob", "alice-token")  # a user name that is not the token's


def test_the_client_takes_its_token_from_the_environment(secured, world, monkeypatch):
    import thresher

    monkeypatch.setenv("THRESHER_TOKEN", "reader-token")
    connection = thresher.Connection(secured.metadata_address, secured.flight_address, secured.scanner_address)
    assert connection.read_query(common_pb2.Query(datasource_id=world[1])).num_rows >= 1
    datasource = connection.call_metadata("GetDatasource", pb.GetDatasourceRequest(id=world[1])).datasource
    assert datasource.namespace == NAMESPACE


def test_a_scan_started_with_a_users_token_writes_with_the_scanners_token(secured, tmp_path):
    from thresher import datasources

    (tmp_path / "one.txt").write_bytes(b"1")
    alice = secured.connect(token="alice-token")
    ds = datasources.get_or_create(NAMESPACE, "scanned", tmp_path, connection=alice).wait_until_ready(
        timeout=60, progress=False
    )
    assert ds.count() == 1
    assert {row["actor"] for row in secured.stores[0].changes(ds.id, None, None).to_pylist()} == {"scanner"}


@pytest.mark.parametrize("service", ["metadata", "scanner", "flight"])
def test_services_refuse_to_listen_beyond_loopback_without_tokens(service, tmp_path):
    from thresher.services.flight.server import create_server as create_flight
    from thresher.services.metadata.server import create_server as create_metadata
    from thresher.services.scanner.server import create_server as create_scanner

    start = {
        "metadata": lambda: create_metadata("0.0.0.0:0", None),
        "scanner": lambda: create_scanner("0.0.0.0:0", "127.0.0.1:1"),
        "flight": lambda: create_flight("[::]:0", "127.0.0.1:1"),
    }[service]
    with pytest.raises(InsecureBindError, match="without authentication"):
        start()


def test_loopback_addresses():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.9.1", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "", "::", "10.0.0.1", "metadata", "example.org"))


def test_token_configuration():
    import hashlib

    table = TokenTable.parse(
        f"# comment\nt1=alice:team/*:write\nt1=alice:pub/*:read, sha256:{hashlib.sha256(b't2').hexdigest()}=bob:*:read"
    )
    alice, bob = table.authenticate("t1"), table.authenticate("t2")
    assert alice.may("team/x", write=True) and alice.may("pub/y") and not alice.may("pub/y", write=True)
    assert not alice.may("teams/x") and bob.may("any/where") and not bob.may("any/where", write=True)
    assert table.authenticate("t3") is None and table.authenticate("") is None
    for bad in ("t1=alice:team/*", "t1=alice:team/*:admin", "=a:b:read", "t1=a:*:read,t1=b:*:read"):
        with pytest.raises(TokenConfigError):
            TokenTable.parse(bad)

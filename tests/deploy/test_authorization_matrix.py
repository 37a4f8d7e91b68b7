"""The authorization matrix: every gRPC method of every service (enumerated from the descriptors) and every
Flight verb and ticket kind (enumerated from ``flight.proto``'s oneofs), against two metadata replicas,
their internal data ports, two flight replicas and the scanner, all over one PostgreSQL database.

Each call aims at a victim namespace and is made with no token, a wrong token, a token scoped to another
namespace and (for writes) a read-only token on the victim's namespace. Each must be refused with
UNAUTHENTICATED or PERMISSION_DENIED; SQL over a namespace the token may not read answers "does not exist"
(on purpose: the answer is the same as for a name that exists nowhere, so it reveals nothing); a verb that
touches no namespace at all (an unknown action, DoExchange, the data port's unserved verbs) must answer
the admin the same as the stranger. The victim's data is compared before and after.

Adding an RPC, a FlightCommand kind or a FlightTicket kind without a line here fails this suite.
"""

from __future__ import annotations

import collections
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pyarrow as pa
import pyarrow.flight as fl
import pytest
from google.protobuf import message_factory

from thresher import datasources
from thresher.core import status
from thresher.core.arrow_io import upsert_table_requests
from thresher.core.transport import open_channel
from thresher.core.types import to_proto_value
from thresher.flight_sql_protocol import flight_sql_pb2 as fsql
from thresher.services.flight.sql.protocol import pack
from thresher.services.metadata.data_port import SQL_TICKET_PREFIX
from thresher.v1 import common_pb2, flight_pb2, metadata_service_pb2_grpc, scanner_service_pb2_grpc
from thresher.v1 import metadata_service_pb2 as pb
from thresher.v1 import scanner_service_pb2 as spb

from .conftest import security
from .stack import ServiceStack

VICTIM = f"team/victim-{os.getpid()}"
ATTACKER = f"other/attacker-{os.getpid()}"
THUMB = b"the victim's private thumbnail"
# Who calls: (label, token). The stranger may write another namespace; the reader may only read the victim's.
UNAUTHENTICATED_CALLERS = (("no token", None), ("a wrong token", "not-a-token"))
STRANGER, READER, ADMIN = "bob-token", "reader-token", "admin-token"
REFUSALS = ("UNAUTHENTICATED", "PERMISSION_DENIED")
SQL_HIDDEN = "does not exist"


@dataclass
class Victim:
    datasource_id: int
    dataset_id: int
    bag: str
    blob: str
    attacker_datasource_id: int


class Tally:
    """Counts every call tried and how each was refused."""

    def __init__(self) -> None:
        self.tried = 0
        self.refused: collections.Counter[str] = collections.Counter()

    def refused_as(self, answer: str, what: str, allowed: tuple[str, ...] = REFUSALS) -> None:
        self.tried += 1
        assert answer in allowed, f"{what}: answered {answer}, expected one of {allowed}"
        self.refused[answer] += 1


@pytest.fixture(scope="module")
def stack(postgres_store_factory):
    with ServiceStack(
        [postgres_store_factory(), postgres_store_factory()], security(), flights=2, home=postgres_store_factory.home
    ) as running:
        yield running


def _bearer(token: str | None) -> tuple:
    return (("authorization", f"Bearer {token}"),) if token else ()


def _scanned(stack, namespace: str, name: str, folder) -> int:
    """A datasource over ``folder`` (one file, ``a``), scanned to the end: the scanner has nothing left to
    do to it, so the snapshots below see only what the matrix's callers did."""
    folder.mkdir()
    (folder / "a").write_bytes(b"a")
    with stack.connect(token=ADMIN) as connection:
        return (
            datasources.get_or_create(namespace, name, folder, connection=connection)
            .wait_until_ready(timeout=60, progress=False)
            .id
        )


@pytest.fixture(scope="module")
def victim(stack, tmp_path_factory) -> Victim:
    folder = tmp_path_factory.mktemp("matrix")
    source_id = _scanned(stack, VICTIM, "ds", folder / "victim")
    attacker_id = _scanned(stack, ATTACKER, "mine", folder / "attacker")
    channel = open_channel(stack.metadata_address)
    stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
    admin = _bearer(ADMIN)
    source = stub.GetDatasource(pb.GetDatasourceRequest(id=source_id), metadata=admin).datasource
    stub.UpsertMetadata(
        pb.UpsertMetadataRequest(
            datasource_id=source.id,
            create_missing=True,
            datapoints=[
                pb.DatapointValues(
                    path="a", values={"n": to_proto_value(1), "thumb": common_pb2.Value(blob_value=THUMB)}
                )
            ],
        ),
        metadata=admin,
    )
    dataset = stub.SaveDataset(
        pb.SaveDatasetRequest(namespace=VICTIM, name="all", query=common_pb2.Query(datasource_id=source.id)),
        metadata=admin,
    ).dataset
    stub.RegisterBagDataset(pb.RegisterBagDatasetRequest(namespace=VICTIM, name="bag", uri="/data/bag"), metadata=admin)
    stub.UpsertMetadata(
        pb.UpsertMetadataRequest(
            datasource_id=attacker_id,
            create_missing=True,
            datapoints=[
                pb.DatapointValues(path="a", values={"thumb": common_pb2.Value(blob_value=b"the attacker's own")})
            ],
        ),
        metadata=admin,
    )
    channel.close()
    return Victim(source.id, dataset.id, f"{VICTIM}/bag", hashlib.sha256(THUMB).hexdigest(), attacker_id)


def _snapshot(stack, victim: Victim) -> dict:
    """Everything of the victim's an attacker could change, as the admin reads it."""
    channel = open_channel(stack.metadata_address)
    stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
    admin = _bearer(ADMIN)
    query = common_pb2.Query(datasource_id=victim.datasource_id)
    with stack.connect(token=ADMIN) as connection:
        rows = connection.read_query(query).to_pylist()
    snapshot = {
        "namespaces": sorted(
            n.name
            for n in stub.ListNamespaces(pb.ListNamespacesRequest(), metadata=admin).namespaces
            if n.name.startswith(VICTIM)
        ),
        "datasources": [
            (d.id, d.name, d.source_uri, [(f.name, f.type) for f in d.fields])
            for d in stub.ListDatasources(pb.ListDatasourcesRequest(namespace=VICTIM), metadata=admin).datasources
        ],
        "rows": sorted(rows, key=lambda row: row["path"]),
        "changes": sum(
            1
            for part in stub.ListChanges(pb.ListChangesRequest(datasource_id=victim.datasource_id), metadata=admin)
            if part.WhichOneof("part") == "record_batch"
        ),
        "datasets": [
            (d.id, d.name, d.query.SerializeToString())
            for d in stub.ListDatasets(pb.ListDatasetsRequest(namespace=VICTIM), metadata=admin).datasets
        ],
        "bags": [
            (b.name, b.uri)
            for b in stub.ListBagDatasets(pb.ListBagDatasetsRequest(namespace=VICTIM), metadata=admin).bag_datasets
        ],
    }
    channel.close()
    return snapshot


# -- gRPC -----------------------------------------------------------------------------------------------

READS = {
    "GetNamespace",
    "ListNamespaces",
    "GetDatasource",
    "ListDatasources",
    "ExecuteQuery",
    "DescribeQuery",
    "ReadQuery",
    "CountValues",
    "ExecuteSql",
    "DescribeSql",
    "ListSqlTables",
    "GetHistory",
    "ListChanges",
    "GetDataset",
    "ListDatasets",
    "GetBagDataset",
    "ListBagDatasets",
    "GetScanStatus",
}
# Answered to a stranger, without the victim: listings filter, SQL does not see the namespace.
LISTED = {"ListNamespaces"}
SQL = {"ExecuteSql", "DescribeSql"}


def _metadata_requests(v: Victim) -> dict:
    query = common_pb2.Query(datasource_id=v.datasource_id)
    table = pa.table({"path": ["a"], "n": [2]})
    sql = f'SELECT * FROM "{VICTIM}".ds'
    return {
        "CreateNamespace": pb.CreateNamespaceRequest(name=f"{VICTIM}x"),
        "GetNamespace": pb.GetNamespaceRequest(name=VICTIM),
        "ListNamespaces": pb.ListNamespacesRequest(),
        "CreateDatasource": pb.CreateDatasourceRequest(namespace=VICTIM, name="new", source_uri="file:///y"),
        "GetDatasource": pb.GetDatasourceRequest(id=v.datasource_id),
        "GetOrCreateDatasource": pb.GetOrCreateDatasourceRequest(namespace=VICTIM, name="ds2", source_uri="file:///x"),
        "ListDatasources": pb.ListDatasourcesRequest(namespace=VICTIM),
        "DeleteDatasource": pb.DeleteDatasourceRequest(id=v.datasource_id),
        "UpdateScanStatus": pb.UpdateScanStatusRequest(
            datasource_id=v.datasource_id,
            scan=common_pb2.ScanStatus(state=common_pb2.SCAN_STATE_FAILED, failure_reason="vandalised"),
        ),
        "DefineFields": pb.DefineFieldsRequest(
            datasource_id=v.datasource_id, fields=[common_pb2.Field(name="m", type=common_pb2.FIELD_TYPE_INT)]
        ),
        "UpsertMetadata": pb.UpsertMetadataRequest(
            datasource_id=v.datasource_id, datapoints=[pb.DatapointValues(path="a", values={"n": to_proto_value(3)})]
        ),
        "UpsertTable": list(upsert_table_requests(v.datasource_id, "path", table.schema, table.to_batches())),
        "CommitStagedUpload": pb.CommitStagedUploadRequest(
            staging_session="s", datasource_id=v.datasource_id, block_count=1, create_missing=True
        ),
        "AbortStagedUpload": pb.AbortStagedUploadRequest(staging_session="s", datasource_id=v.datasource_id),
        "DeleteMetadata": pb.DeleteMetadataRequest(datasource_id=v.datasource_id, paths=["a"], fields=["n"]),
        "DeleteDatapoints": pb.DeleteDatapointsRequest(datasource_id=v.datasource_id, paths=["a"]),
        "ExecuteQuery": pb.ExecuteQueryRequest(query=query),
        "DescribeQuery": pb.DescribeQueryRequest(query=query),
        "ReadQuery": pb.ReadQueryRequest(query=query, max_rows=10),
        "CountValues": pb.CountValuesRequest(query=query, field="n"),
        "ExecuteSql": pb.ExecuteSqlRequest(sql=sql),
        "DescribeSql": pb.DescribeSqlRequest(sql=sql),
        "ListSqlTables": pb.ListSqlTablesRequest(namespace=VICTIM),
        "GetHistory": pb.GetHistoryRequest(datasource_id=v.datasource_id, path="a"),
        "ListChanges": pb.ListChangesRequest(datasource_id=v.datasource_id),
        "SaveDataset": pb.SaveDatasetRequest(namespace=VICTIM, name="all", query=query),
        "GetDataset": pb.GetDatasetRequest(id=v.dataset_id),
        "ListDatasets": pb.ListDatasetsRequest(namespace=VICTIM),
        "DeleteDataset": pb.DeleteDatasetRequest(id=v.dataset_id),
        "RegisterBagDataset": pb.RegisterBagDatasetRequest(namespace=VICTIM, name="bag", uri="/elsewhere"),
        "GetBagDataset": pb.GetBagDatasetRequest(namespace=VICTIM, name="bag"),
        "ListBagDatasets": pb.ListBagDatasetsRequest(namespace=VICTIM),
        "CreateVectorIndex": pb.CreateVectorIndexRequest(datasource_id=v.datasource_id, field="emb"),
    }


def _scanner_requests(v: Victim) -> dict:
    return {
        "StartScan": spb.StartScanRequest(datasource_id=v.datasource_id),
        "GetScanStatus": spb.GetScanStatusRequest(datasource_id=v.datasource_id),
    }


SERVICES = {  # service descriptor -> (stub class, requests, addresses of the stack that serve it)
    "MetadataService": (
        pb.DESCRIPTOR.services_by_name["MetadataService"],
        metadata_service_pb2_grpc.MetadataServiceStub,
        _metadata_requests,
        lambda s: s.metadata_addresses,
    ),
    "ScannerService": (
        spb.DESCRIPTOR.services_by_name["ScannerService"],
        scanner_service_pb2_grpc.ScannerServiceStub,
        _scanner_requests,
        lambda s: [s.scanner_address],
    ),
}


def _every_service_descriptor() -> set[str]:
    return {service for module in (pb, spb, flight_pb2, common_pb2) for service in module.DESCRIPTOR.services_by_name}


def _grpc_answer(stub, method, request, token: str | None) -> tuple[str, str, object]:
    call = getattr(stub, method.name)
    try:
        result = call(iter(request) if method.client_streaming else request, metadata=_bearer(token), timeout=30)
        return "OK", "", list(result) if method.server_streaming else result
    except grpc.RpcError as error:
        return error.code().name, error.details() or "", None


def _check_grpc(tally: Tally, stub, method, request, token: str | None, label: str, where: str) -> None:
    answer, details, result = _grpc_answer(stub, method, request, token)
    what = f"{method.full_name} with {label} on {where}"
    write = method.name not in READS
    if token in (None, "not-a-token"):
        tally.refused_as(answer, what, ("UNAUTHENTICATED",))
    elif token == READER:
        assert write
        tally.refused_as(answer, what, ("PERMISSION_DENIED",))
    elif method.name in LISTED:
        tally.tried += 1
        assert answer == "OK" and all(not n.name.startswith(VICTIM) for n in result.namespaces), what
        tally.refused["listed without the victim"] += 1
    elif method.name in SQL:
        assert answer == "INVALID_ARGUMENT" and SQL_HIDDEN in details, (what, answer, details)
        tally.refused_as("does not exist", what, ("does not exist",))
    else:
        tally.refused_as(answer, what, ("PERMISSION_DENIED",))


def test_every_grpc_service_is_in_the_matrix():
    assert _every_service_descriptor() == set(SERVICES)


def test_every_grpc_method_refuses_callers_without_access(stack, victim, capsys):
    before = _snapshot(stack, victim)
    tally = Tally()
    for name, (descriptor, stub_class, requests, addresses) in SERVICES.items():
        built = requests(victim)
        assert set(built) == {m.name for m in descriptor.methods}, f"{name}: methods without a matrix entry"
        for address in addresses(stack):
            channel = open_channel(address)
            stub = stub_class(channel)
            for method in descriptor.methods:
                callers = [*UNAUTHENTICATED_CALLERS, ("an out-of-scope token", STRANGER)]
                if method.name not in READS:
                    callers.append(("a read-only token", READER))
                for label, token in callers:
                    _check_grpc(tally, stub, method, built[method.name], token, label, f"{name} at {address}")
            channel.close()
    assert _snapshot(stack, victim) == before
    with capsys.disabled():
        print(f"\ngRPC matrix: {tally.tried} calls tried, {sum(tally.refused.values())} refused {dict(tally.refused)}")
    assert sum(tally.refused.values()) == tally.tried


# -- Flight -----------------------------------------------------------------------------------------------

# Message types that name no data of their own (and a filter tree nests without end).
_NOT_AIMED = {
    "thresher.v1.Filter",
    "thresher.v1.SelectItem",
    "thresher.v1.OrderBy",
    "thresher.v1.Nearest",
    "google.protobuf.Timestamp",
}


def _aim(message, v: Victim) -> bool:
    """Points every field of ``message`` (recursively) that names data at the victim's; whether any did."""
    aimed = False
    for field in message.DESCRIPTOR.fields:
        if field.message_type is not None:
            if not field.is_repeated and field.message_type.full_name not in _NOT_AIMED:
                aimed |= _aim(getattr(message, field.name), v)
        elif field.name == "datasource_id":
            setattr(message, field.name, v.datasource_id)
            aimed = True
        elif field.name == "dataset":
            setattr(message, field.name, v.bag)
            aimed = True
        elif field.name == "namespace":
            setattr(message, field.name, VICTIM)
            aimed = True
        elif field.name == "sha256":
            setattr(message, field.name, v.blob)
        elif field.name == "path" and field.type == field.TYPE_STRING:
            setattr(message, field.name, "a")
    return aimed


def _minted(container_type, v: Victim) -> dict[str, bytes]:
    """One message per kind of ``container_type``'s ``kind`` oneof, aimed at the victim, minted by hand;
    a query ticket also as one partition of a larger result (its ``id_range`` set, see ``_partition``)."""
    minted = {}
    for field in container_type.DESCRIPTOR.oneofs_by_name["kind"].fields:
        message = message_factory.GetMessageClass(field.message_type)()
        assert _aim(message, v), (
            f"{container_type.DESCRIPTOR.name}.{field.name} has no field this matrix knows how "
            "to aim at another namespace: teach _aim about it"
        )
        minted[field.name] = container_type(**{field.name: message}).SerializeToString()
        if container_type is flight_pb2.FlightTicket and field.name == "query":
            minted["query partition"] = _partition(message)
    return minted


def _partition(query_ticket: flight_pb2.QueryTicket) -> bytes:
    """``query_ticket`` as the ticket of one partition (an endpoint of a partitioned flight): every id."""
    parted = flight_pb2.QueryTicket()
    parted.CopyFrom(query_ticket)
    parted.id_range.start, parted.id_range.stop = 0, 2**62
    return flight_pb2.FlightTicket(query=parted).SerializeToString()


def _options(token: str | None) -> fl.FlightCallOptions:
    return fl.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())] if token else [], timeout=30)


# The Flight error classes pyarrow raises for a status that travelled on the wire.
_WIRE_CLASSES = (
    (fl.FlightUnauthenticatedError, "UNAUTHENTICATED"),
    (fl.FlightUnauthorizedError, "PERMISSION_DENIED"),
    (fl.FlightUnavailableError, "UNAVAILABLE"),
    (pa.ArrowNotImplementedError, "UNIMPLEMENTED"),
    (pa.ArrowInvalid, "INVALID_ARGUMENT"),
    (pa.ArrowKeyError, "NOT_FOUND"),
)
# pyarrow 26 sends every failure of a Python server's GetSchema as UNKNOWN (its GetSchema callback, alone
# among the verbs, does not turn a FlightError into its status); the status is then only the message's
# leading code. Any other verb must carry its refusal on the wire.
MESSAGE_ONLY_VERBS = ("GetSchema", "SQL GetSchema")


def _raw(target: tuple[str, str | None], method: str, descriptor: fl.FlightDescriptor) -> bytes:
    """A unary Flight RPC as a plain gRPC call, whose status is the wire's."""
    address, token = target
    channel = grpc.insecure_channel(address)
    try:
        return channel.unary_unary(f"/arrow.flight.protocol.FlightService/{method}")(
            descriptor.serialize(), metadata=_bearer(token), timeout=30
        )
    finally:
        channel.close()


def _get_schema(target: tuple[str, str | None], descriptor: fl.FlightDescriptor) -> bytes:
    """GetSchema over plain gRPC: pyarrow's client raises a generic ArrowException for every GetSchema
    failure, whatever the status."""
    return _raw(target, "GetSchema", descriptor)


def _flight_answer(call: Callable[[], object]) -> tuple[str, str, object, bool]:
    """(status code name, message, result, whether the code travelled as the wire status)."""
    try:
        return "OK", "", call(), True
    except grpc.RpcError as error:
        code, rest = status.split_code(status.flight_message(Exception(error.details() or "")))
        wire = error.code().name
        return code or wire, rest, None, code in (None, wire)
    except (fl.FlightError, pa.ArrowException, OSError) as error:
        message = status.flight_message(error)
        code, rest = status.split_code(message)
        wire = next((name for cls, name in _WIRE_CLASSES if isinstance(error, cls)), None)
        return code or wire or "UNKNOWN", rest, None, wire is not None and wire == (code or wire)


def _read_all(client, ticket: bytes, options):
    return client.do_get(fl.Ticket(ticket), options=options).read_all()


def _do_put(client, descriptor, table: pa.Table, options):
    writer, reader = client.do_put(descriptor, table.schema, options=options)
    with writer:
        writer.write_table(table)
        writer.done_writing()
        reader.read()


def _do_exchange(client, descriptor, options):
    writer, reader = client.do_exchange(descriptor, options=options)
    with writer:
        return reader.read_all()


@dataclass
class Verb:
    """One Flight call: ``kind`` says what refusal it must get from a caller who may not read the victim:
    'denied' (PERMISSION_DENIED), 'hidden' (SQL: does not exist), 'listed' (answered without the victim),
    'inert' (touches no namespace: the admin gets the same answer) or 'write' (also refused to the reader)."""

    name: str
    call: Callable[[fl.FlightClient, fl.FlightCallOptions], object]
    kind: str
    check: Callable[[object], bool] | None = None


def _flight_verbs(v: Victim) -> list[Verb]:
    verbs = []
    descriptors = {
        f"path {kind}": fl.FlightDescriptor.for_path(VICTIM, kind, name)
        for kind, name in (("datasources", "ds"), ("datasets", "all"), ("bags", "bag"))
    }
    for kind, raw in _minted(flight_pb2.FlightCommand, v).items():
        descriptors[f"command {kind}"] = fl.FlightDescriptor.for_command(raw)
    for label, descriptor in descriptors.items():
        # An upsert command describes an upload, not a flight: refused as a bad request to everyone alike.
        kind = "inert" if label == "command upsert" else "denied"
        verbs.append(
            Verb(f"GetFlightInfo({label})", lambda c, o, t, d=descriptor: c.get_flight_info(d, options=o), kind)
        )
        verbs.append(Verb(f"GetSchema({label})", lambda c, o, t, d=descriptor: _get_schema(t, d), kind))
    for kind, raw in _minted(flight_pb2.FlightTicket, v).items():
        verbs.append(Verb(f"DoGet({kind} ticket)", lambda c, o, t, ticket=raw: _read_all(c, ticket, o), "denied"))
    upsert = fl.FlightDescriptor.for_command(
        flight_pb2.FlightCommand(
            upsert=flight_pb2.UpsertCommand(datasource_id=v.datasource_id, path_column="path")
        ).SerializeToString()
    )
    verbs.append(
        Verb("DoPut(upsert)", lambda c, o, t: _do_put(c, upsert, pa.table({"path": ["a"], "n": [9]}), o), "write")
    )
    verbs.append(
        Verb("ListFlights(victim)", lambda c, o, t: list(c.list_flights(VICTIM.encode(), options=o)), "denied")
    )
    verbs.append(
        Verb(
            "ListFlights()",
            lambda c, o, t: list(c.list_flights(options=o)),
            "listed",
            lambda infos: all(VICTIM not in str(info.descriptor) for info in infos),
        )
    )
    verbs.append(Verb("DoExchange", lambda c, o, t: _do_exchange(c, descriptors["path datasources"], o), "inert"))
    # pyarrow's client has no PollFlightInfo; the service does not implement it, for anyone.
    verbs.append(
        Verb("PollFlightInfo", lambda c, o, t: _raw(t, "PollFlightInfo", descriptors["path datasources"]), "inert")
    )
    verbs.append(
        Verb(
            "DoAction(unknown)",
            lambda c, o, t: list(c.do_action(fl.Action("drop-everything", b""), options=o)),
            "inert",
        )
    )
    # Flight SQL: statements over the victim's tables, prepared or not, and the catalog.
    sql = f'SELECT * FROM "{VICTIM}".ds'
    statement = fl.FlightDescriptor.for_command(pack(fsql.CommandStatementQuery(query=sql)))
    handle = pb.ExecuteSqlRequest(sql=sql).SerializeToString()
    prepared = fl.FlightDescriptor.for_command(
        pack(fsql.CommandPreparedStatementQuery(prepared_statement_handle=handle))
    )
    tables = fl.FlightDescriptor.for_command(pack(fsql.CommandGetTables(include_schema=True)))
    verbs += [
        Verb("SQL GetFlightInfo(statement)", lambda c, o, t: c.get_flight_info(statement, options=o), "hidden"),
        Verb("SQL GetSchema(statement)", lambda c, o, t: _get_schema(t, statement), "hidden"),
        Verb("SQL GetFlightInfo(prepared)", lambda c, o, t: c.get_flight_info(prepared, options=o), "hidden"),
        Verb(
            "SQL DoGet(statement ticket)",
            lambda c, o, t: _read_all(c, pack(fsql.TicketStatementQuery(statement_handle=handle)), o),
            "hidden",
        ),
        Verb(
            "SQL DoAction(CreatePreparedStatement)",
            lambda c, o, t: list(
                c.do_action(
                    fl.Action("CreatePreparedStatement", pack(fsql.ActionCreatePreparedStatementRequest(query=sql))),
                    options=o,
                )
            ),
            "hidden",
        ),
        Verb("SQL DoPut(bind parameters)", lambda c, o, t: _do_put(c, prepared, pa.table({"p": [1]}), o), "inert"),
        Verb(
            "SQL DoAction(ClosePreparedStatement)",
            lambda c, o, t: list(
                c.do_action(
                    fl.Action(
                        "ClosePreparedStatement",
                        pack(fsql.ActionClosePreparedStatementRequest(prepared_statement_handle=handle)),
                    ),
                    options=o,
                )
            ),
            "inert",
        ),
        Verb(
            "SQL DoGet(GetTables)",
            lambda c, o, t: _read_all(c, pack(fsql.CommandGetTables(include_schema=True)), o),
            "listed",
            lambda table: VICTIM not in table.column("db_schema_name").to_pylist(),
        ),
        Verb("SQL GetFlightInfo(GetTables)", lambda c, o, t: c.get_flight_info(tables, options=o), "inert"),
    ]
    return verbs


def _data_port_verbs(v: Victim) -> list[Verb]:
    """The metadata replicas' internal port serves DoGet(ExecuteQueryRequest) and DoGet of a SQL statement
    (``SQL_TICKET_PREFIX`` + ExecuteSqlRequest), and nothing else."""
    ticket = pb.ExecuteQueryRequest(query=common_pb2.Query(datasource_id=v.datasource_id)).SerializeToString()
    sql_ticket = SQL_TICKET_PREFIX + pb.ExecuteSqlRequest(sql=f'SELECT * FROM "{VICTIM}".ds').SerializeToString()
    descriptor = fl.FlightDescriptor.for_path(VICTIM, "datasources", "ds")
    return [
        Verb("DoGet(ExecuteQueryRequest)", lambda c, o, t: _read_all(c, ticket, o), "denied"),
        Verb("DoGet(ExecuteSqlRequest)", lambda c, o, t: _read_all(c, sql_ticket, o), "hidden"),
        Verb("GetFlightInfo", lambda c, o, t: c.get_flight_info(descriptor, options=o), "inert"),
        Verb("GetSchema", lambda c, o, t: _get_schema(t, descriptor), "inert"),
        Verb("ListFlights", lambda c, o, t: list(c.list_flights(options=o)), "inert"),
        Verb("DoPut", lambda c, o, t: _do_put(c, descriptor, pa.table({"path": ["a"]}), o), "inert"),
        Verb("DoAction", lambda c, o, t: list(c.do_action(fl.Action("x", b""), options=o)), "inert"),
        Verb("DoExchange", lambda c, o, t: _do_exchange(c, descriptor, o), "inert"),
    ]


def _check_flight(tally: Tally, client: fl.FlightClient, address: str, verb: Verb, where: str) -> None:
    for label, token in UNAUTHENTICATED_CALLERS:
        answer, _, _, on_wire = _flight_answer(lambda: verb.call(client, _options(token), (address, token)))
        assert on_wire, f"{verb.name} with {label} on {where}: {answer} only in the message"
        tally.refused_as(answer, f"{verb.name} with {label} on {where}", ("UNAUTHENTICATED",))
    what = f"{verb.name} with an out-of-scope token on {where}"
    answer, message, result, on_wire = _flight_answer(
        lambda: verb.call(client, _options(STRANGER), (address, STRANGER))
    )
    if verb.kind in ("denied", "write") and not on_wire:
        assert verb.name.startswith(MESSAGE_ONLY_VERBS) and answer == "PERMISSION_DENIED", (what, answer, message)
        tally.refused_as(
            "PERMISSION_DENIED in the message (GetSchema)", what, ("PERMISSION_DENIED in the message (GetSchema)",)
        )
    elif verb.kind in ("denied", "write"):
        tally.refused_as(answer, what, ("PERMISSION_DENIED",))
    elif verb.kind == "hidden":
        assert SQL_HIDDEN in message, (what, answer, message)
        tally.refused_as("does not exist", what, ("does not exist",))
    elif verb.kind == "listed":
        assert answer == "OK" and verb.check(result), (what, answer, message)
        tally.refused_as("listed without the victim", what, ("listed without the victim",))
    else:
        admin, _, _, _ = _flight_answer(lambda: verb.call(client, _options(ADMIN), (address, ADMIN)))
        assert answer == admin, f"{what}: answered {answer}, the admin {admin}: the answer depends on who asks"
        tally.refused_as("answered as to the admin", what, ("answered as to the admin",))
    if verb.kind == "write":
        answer, _, _, on_wire = _flight_answer(lambda: verb.call(client, _options(READER), (address, READER)))
        assert on_wire, f"{verb.name} with a read-only token on {where}: {answer} only in the message"
        tally.refused_as(answer, f"{verb.name} with a read-only token on {where}", ("PERMISSION_DENIED",))


# Every RPC of Arrow Flight's FlightService. ListActions is the health check, open by design
# (tests/deploy/test_auth.py); Handshake is checked with a wrong token below.
FLIGHT_RPCS = {
    "Handshake",
    "ListFlights",
    "GetFlightInfo",
    "PollFlightInfo",
    "GetSchema",
    "DoGet",
    "DoPut",
    "DoExchange",
    "DoAction",
    "ListActions",
}


def test_every_flight_rpc_is_in_the_matrix(victim):
    named = {verb.name.removeprefix("SQL ").split("(")[0] for verb in _flight_verbs(victim)}
    assert named | {"Handshake", "ListActions"} == FLIGHT_RPCS


def test_every_flight_verb_and_ticket_kind_refuses_callers_without_access(stack, victim, capsys):
    before = _snapshot(stack, victim)
    tally = Tally()
    for address in stack.flight_addresses:
        with fl.connect(f"grpc://{address}") as client:
            for verb in _flight_verbs(victim):
                _check_flight(tally, client, address, verb, f"flight {address}")
            with pytest.raises(fl.FlightUnauthenticatedError):
                client.authenticate_basic_token("bob", "not-a-token")
            tally.refused_as("UNAUTHENTICATED", "Handshake with a wrong token")
    for address in stack.data_addresses:
        with fl.connect(f"grpc://{address}") as client:
            for verb in _data_port_verbs(victim):
                _check_flight(tally, client, address, verb, f"data port {address}")
    assert _snapshot(stack, victim) == before
    with capsys.disabled():
        print(
            f"\nFlight matrix: {tally.tried} calls tried, {sum(tally.refused.values())} refused {dict(tally.refused)}"
        )
    assert sum(tally.refused.values()) == tally.tried


def test_the_owners_own_tokens_do_read_what_the_matrix_refuses(stack, victim):
    """The refusals above are about who asks: the reader reads the same tickets on every replica."""
    tickets = _minted(flight_pb2.FlightTicket, victim)
    for address in stack.flight_addresses:
        with fl.connect(f"grpc://{address}") as client:
            assert _read_all(client, tickets["query"], _options(READER)).num_rows == 1
            assert _read_all(client, tickets["query partition"], _options(READER)).num_rows == 1
            blob = _read_all(client, tickets["blob"], _options(READER))
            assert b"".join(blob.column("data").to_pylist()) == THUMB
    sql_ticket = SQL_TICKET_PREFIX + pb.ExecuteSqlRequest(sql=f'SELECT path FROM "{VICTIM}".ds').SerializeToString()
    for address in stack.data_addresses:
        with fl.connect(f"grpc://{address}") as client:
            assert _read_all(client, sql_ticket, _options(READER)).num_rows == 1


# -- blobs: content addressing is not a capability ----------------------------------------------------------


def _blob(client, digest: str, datasource_id: int, token: str) -> tuple[str, bytes | None]:
    ticket = flight_pb2.FlightTicket(blob=flight_pb2.BlobTicket(sha256=digest, datasource_id=datasource_id))
    answer, message, table, _ = _flight_answer(lambda: _read_all(client, ticket.SerializeToString(), _options(token)))
    return answer, (b"".join(table.column("data").to_pylist()) if table is not None else message.encode())


def _write(stack, datasource_id: int, values: dict) -> None:
    channel = open_channel(stack.metadata_address)
    metadata_service_pb2_grpc.MetadataServiceStub(channel).UpsertMetadata(
        pb.UpsertMetadataRequest(
            datasource_id=datasource_id, datapoints=[pb.DatapointValues(path="a", values=values)], create_missing=True
        ),
        metadata=_bearer(ADMIN),
    )
    channel.close()


def test_a_blob_is_read_only_through_a_datasource_that_holds_it(stack, victim, tmp_path):
    shared = b"bytes that two namespaces hold"
    digest = hashlib.sha256(shared).hexdigest()
    _write(stack, victim.datasource_id, {"shared": common_pb2.Value(blob_value=shared)})
    _write(stack, victim.attacker_datasource_id, {"shared": common_pb2.Value(blob_value=shared)})
    third = _scanned(stack, f"third/{os.getpid()}", "own", tmp_path / "third")
    for address in stack.flight_addresses:
        with fl.connect(f"grpc://{address}") as client:
            # Either owner reads the shared blob through its own datasource...
            assert _blob(client, digest, victim.datasource_id, READER) == ("OK", shared)
            assert _blob(client, digest, victim.attacker_datasource_id, STRANGER) == ("OK", shared)
            # ...never through the other's, and a third namespace reads it through nothing.
            assert _blob(client, digest, victim.datasource_id, STRANGER)[0] == "PERMISSION_DENIED"
            for datasource_id in (victim.datasource_id, victim.attacker_datasource_id, third):
                assert _blob(client, digest, datasource_id, "carol-token")[0] == "PERMISSION_DENIED"
            # The victim's private blob, asked for through the attacker's own datasource: refused, and in the
            # same words as a hash that exists nowhere.
            answer, message = _blob(client, victim.blob, victim.attacker_datasource_id, STRANGER)
            assert answer == "PERMISSION_DENIED" and b"holds no blob" in message
            nowhere = _blob(client, "0" * 64, victim.attacker_datasource_id, STRANGER)
            assert nowhere == ("PERMISSION_DENIED", message.replace(victim.blob.encode(), b"0" * 64))
            # A bare hash names no datasource: refused before anything is looked up.
            answer, message = _blob(client, victim.blob, 0, ADMIN)
            assert answer == "INVALID_ARGUMENT" and b"names no datasource" in message


def test_a_blob_a_later_write_replaced_stays_readable_to_the_owner_through_history(stack, victim):
    old, new = b"first version of a", b"second version of a"
    _write(stack, victim.datasource_id, {"versioned": common_pb2.Value(blob_value=old)})
    _write(stack, victim.datasource_id, {"versioned": common_pb2.Value(blob_value=new)})
    with fl.connect(f"grpc://{stack.flight_addresses[1]}") as client:
        assert _blob(client, hashlib.sha256(old).hexdigest(), victim.datasource_id, READER) == ("OK", old)
        assert _blob(client, hashlib.sha256(new).hexdigest(), victim.datasource_id, READER) == ("OK", new)
        assert _blob(client, hashlib.sha256(old).hexdigest(), victim.datasource_id, STRANGER)[0] == "PERMISSION_DENIED"

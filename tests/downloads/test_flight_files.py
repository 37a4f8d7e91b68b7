"""The flight side of file and blob tickets (services/flight/file_streams.py), seen by a bare Flight client."""

from __future__ import annotations

import pyarrow.flight as fl
import pytest

import thresher
from thresher.core.errors import AlreadyExistsError, NotFoundError
from thresher.v1 import flight_pb2


def do_get(services, **kind) -> fl.FlightStreamReader:
    client = fl.connect(f"grpc://{services.flight_address}")
    return client.do_get(fl.Ticket(flight_pb2.FlightTicket(**kind).SerializeToString()))


def test_stream_format_and_metadata(local_source, local_services):
    ds = local_source({"f.bin": bytes(range(200))})
    reader = do_get(local_services, file=flight_pb2.FileTicket(datasource_id=ds.id, path="f.bin", offset=10, length=50))
    table = reader.read_all()
    assert table.schema.names == ["data"] and not table.schema.field("data").nullable
    assert table.schema.metadata[b"thresher.size"] == b"200" and table.schema.metadata[b"thresher.length"] == b"50"
    assert b"".join(table.column("data").to_pylist()) == bytes(range(10, 60))


def test_refusals_carry_status_and_name(local_source, local_services):
    ds = local_source({"f.bin": b"x"})
    with pytest.raises(fl.FlightError, match="NOT_FOUND: .*999999"):  # no such datasource
        do_get(local_services, file=flight_pb2.FileTicket(datasource_id=999999, path="f.bin")).read_all()
    with pytest.raises(fl.FlightError, match="NOT_FOUND: .*nope.bin does not exist"):
        do_get(local_services, file=flight_pb2.FileTicket(datasource_id=ds.id, path="nope.bin")).read_all()
    with pytest.raises(fl.FlightError, match="INVALID_ARGUMENT: .*offset and length"):
        do_get(local_services, file=flight_pb2.FileTicket(datasource_id=ds.id, path="f.bin", offset=-1)).read_all()
    with pytest.raises(fl.FlightError, match="INVALID_ARGUMENT: .*leaves the storage root"):
        do_get(local_services, file=flight_pb2.FileTicket(datasource_id=ds.id, path="../../etc/passwd")).read_all()
    with pytest.raises(fl.FlightError, match=f"PERMISSION_DENIED: datasource .* holds no blob {'a' * 64}"):
        do_get(local_services, blob=flight_pb2.BlobTicket(sha256="a" * 64, datasource_id=ds.id)).read_all()


def test_namespace_bound_to_a_repository(conn, namespace, git_repo):
    created = thresher.create_namespace(namespace, git_repo, connection=conn)
    assert created.repository == git_repo and thresher.get_namespace(namespace, connection=conn) == created
    assert thresher.get_or_create_namespace(namespace, git_repo, connection=conn) == created
    with pytest.raises(AlreadyExistsError, match="bound to repository"):
        thresher.get_or_create_namespace(namespace, "/elsewhere", connection=conn)
    with pytest.raises(AlreadyExistsError):
        thresher.create_namespace(namespace, git_repo, connection=conn)
    with pytest.raises(NotFoundError):
        thresher.get_namespace(namespace + "-none", connection=conn)

"""File and blob tickets: byte ranges of a datasource's files (local, S3, git) and blobs, and their errors."""

from __future__ import annotations

import hashlib
import os

import pyarrow.flight as fl
import pytest

from tests.storage_endpoints import commit_files
from thresher.core.storage import open_storage
from thresher.core.storage.blobs import BlobStore
from thresher.v1 import flight_pb2
from thresher.v1 import metadata_service_pb2 as mpb

CHUNK = 4 * 1024 * 1024  # files.CHUNK_SIZE
BIG = bytes(range(256)) * (CHUNK // 256) + b"tail" * 1000  # a little over one chunk


def file_ticket(datasource_id: int, path: str, offset: int = 0, length: int = 0) -> fl.Ticket:
    return fl.Ticket(
        flight_pb2.FlightTicket(
            file=flight_pb2.FileTicket(datasource_id=datasource_id, path=path, offset=offset, length=length)
        ).SerializeToString()
    )


def blob_ticket(digest: str, datasource_id: int) -> fl.Ticket:
    return fl.Ticket(
        flight_pb2.FlightTicket(
            blob=flight_pb2.BlobTicket(sha256=digest, datasource_id=datasource_id)
        ).SerializeToString()
    )


def fetch(flight, ticket: fl.Ticket) -> tuple[bytes, dict[bytes, bytes], int]:
    """(bytes, schema metadata, number of batches) of a file or blob stream."""
    table = flight.do_get(ticket).read_all()
    chunks = [chunk for column in table.columns for chunk in column.to_pylist()]
    return b"".join(chunks), table.schema.metadata, len(chunks)


def error_text(flight, ticket: fl.Ticket) -> str:
    with pytest.raises(fl.FlightError) as caught:
        flight.do_get(ticket).read_all()
    return str(caught.value)


def create(stub, namespace: str, name: str, source_uri: str, revision: str = "") -> int:
    return stub.CreateDatasource(
        mpb.CreateDatasourceRequest(namespace=namespace, name=name, source_uri=source_uri, revision=revision)
    ).datasource.id


def test_a_local_file_streams_whole_and_in_ranges(flight, metadata_stub, namespace, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "big.bin").write_bytes(BIG)
    (tmp_path / "empty").write_bytes(b"")
    source = create(metadata_stub, namespace, "files", tmp_path.as_uri())

    data, metadata, batches = fetch(flight, file_ticket(source, "sub/big.bin"))
    assert data == BIG and batches == 2
    assert metadata[b"thresher.size"] == metadata[b"thresher.length"] == str(len(BIG)).encode()
    assert fetch(flight, file_ticket(source, "sub/big.bin", CHUNK - 3, 10))[0] == BIG[CHUNK - 3 : CHUNK + 7]
    assert fetch(flight, file_ticket(source, "sub/big.bin", len(BIG) - 5))[0] == BIG[-5:]
    assert fetch(flight, file_ticket(source, "sub/big.bin", len(BIG) + 5))[0] == b""  # past the end: nothing
    assert fetch(flight, file_ticket(source, "empty")) == (b"", {b"thresher.size": b"0", b"thresher.length": b"0"}, 0)


def test_a_missing_file_is_not_found_and_a_path_out_of_the_root_is_refused(flight, metadata_stub, namespace, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "secret").write_bytes(b"secret")
    os.symlink(tmp_path / "secret", tmp_path / "data" / "link")
    source = create(metadata_stub, namespace, "files", (tmp_path / "data").as_uri())
    message = error_text(flight, file_ticket(source, "absent.txt"))
    assert message.startswith("NOT_FOUND: ") and str(tmp_path / "data" / "absent.txt") in message
    for path in ("../secret", "/etc/passwd", "link"):
        message = error_text(flight, file_ticket(source, path))
        assert message.startswith(f"INVALID_ARGUMENT: {path!r}"), message
    assert error_text(flight, file_ticket(source, "a", offset=-1)).startswith("INVALID_ARGUMENT: ")


def test_an_s3_object_streams_in_ranges(flight, metadata_stub, namespace, s3_bucket):
    storage = open_storage(f"s3://{s3_bucket}/data")
    storage.write("a/b.bin", BIG)
    source = create(metadata_stub, namespace, "objects", f"s3://{s3_bucket}/data")
    data, metadata, _ = fetch(flight, file_ticket(source, "a/b.bin"))
    assert data == BIG and metadata[b"thresher.etag"] == storage.stat("a/b.bin").etag.encode()
    assert fetch(flight, file_ticket(source, "a/b.bin", 100, 50))[0] == BIG[100:150]
    message = error_text(flight, file_ticket(source, "a/absent.bin"))
    assert message.startswith("NOT_FOUND: ") and f"s3://{s3_bucket}/data/a/absent.bin" in message
    # S3 keys may hold "..", but a ticket path never leaves its source's prefix.
    open_storage(f"s3://{s3_bucket}").write("secret", b"outside the prefix")
    assert error_text(flight, file_ticket(source, "../secret")).startswith("INVALID_ARGUMENT: '../secret' leaves")


def test_a_file_of_a_git_revision_streams_and_follows_the_branch(flight, metadata_stub, namespace, git_repo):
    commit_files(git_repo, {"data/x.txt": b"first version", "secret.txt": b"outside the source"})
    metadata_stub.CreateNamespace(mpb.CreateNamespaceRequest(name=namespace, repository_uri=git_repo))
    source = create(metadata_stub, namespace, "repo", "data", revision="main")
    assert fetch(flight, file_ticket(source, "x.txt", 6))[0] == b"version"
    assert error_text(flight, file_ticket(source, "../secret.txt")).startswith("INVALID_ARGUMENT: ")
    message = error_text(flight, file_ticket(source, "y.txt"))
    assert message.startswith("NOT_FOUND: ") and "'y.txt'" in message and git_repo in message


def test_blobs_stream_by_hash_through_a_datasource_that_holds_them(flight, flight_home, metadata_stub, namespace):
    from thresher.v1 import common_pb2

    blobs = BlobStore(os.path.join(flight_home, "blobs"))
    digest = blobs.put(BIG)
    holder = create(metadata_stub, namespace, "blobs", "file:///nowhere")
    lost = hashlib.sha256(b"held, but gone from the store").hexdigest()
    metadata_stub.UpsertMetadata(
        mpb.UpsertMetadataRequest(
            datasource_id=holder,
            create_missing=True,
            datapoints=[
                mpb.DatapointValues(path="a", values={"big": common_pb2.Value(blob_value=BIG)}),
                mpb.DatapointValues(
                    path="b", values={"big": common_pb2.Value(blob_value=b"held, but gone from the store")}
                ),
            ],
        )
    )
    data, metadata, batches = fetch(flight, blob_ticket(digest, holder))
    assert data == BIG and batches == 2 and metadata[b"thresher.etag"] == digest.encode()
    message = error_text(flight, blob_ticket(lost, holder))  # the flight service's store never had it
    assert message.startswith("NOT_FOUND: ") and lost in message
    absent = hashlib.sha256(b"never stored").hexdigest()
    message = error_text(flight, blob_ticket(absent, holder))
    assert message.startswith("PERMISSION_DENIED: ") and "holds no blob" in message and absent in message
    assert error_text(flight, blob_ticket("ABC", holder)).startswith("INVALID_ARGUMENT: ")
    assert error_text(flight, blob_ticket(digest, 0)).startswith("INVALID_ARGUMENT: ")


def test_errors_carry_no_traceback_on_the_wire(flight_server, metadata_stub, namespace, tmp_path):
    """What a non-Python client sees (services/flight/flight_errors.py says why the code is UNKNOWN here)."""
    import grpc

    source = create(metadata_stub, namespace, "files", tmp_path.as_uri())
    raw = fl.Ticket.serialize(file_ticket(source, "absent.txt"))
    with grpc.insecure_channel(f"127.0.0.1:{flight_server.port}") as channel:
        do_get = channel.unary_stream(
            "/arrow.flight.protocol.FlightService/DoGet",
            request_serializer=lambda ticket: ticket,
            response_deserializer=bytes,
        )
        with pytest.raises(grpc.RpcError) as caught:
            list(do_get(raw))
    assert caught.value.code() is grpc.StatusCode.UNKNOWN
    assert caught.value.details().startswith("NOT_FOUND: ") and "Traceback" not in caught.value.details()


def test_a_segmentation_mask_is_a_blob_of_the_datasource_that_holds_it(flight, flight_home, metadata_stub, namespace):
    from thresher.core import labels
    from thresher.core.types import to_proto_value

    mask = b"mask bytes of one segmentation"
    digest = BlobStore(os.path.join(flight_home, "blobs")).put(mask)  # the flight service's own store
    holder = create(metadata_stub, namespace, "masks", "file:///nowhere")
    other = create(metadata_stub, namespace, "other", "file:///nowhere")
    metadata_stub.UpsertMetadata(
        mpb.UpsertMetadataRequest(
            datasource_id=holder,
            create_missing=True,
            datapoints=[
                mpb.DatapointValues(path="a", values={"seg": to_proto_value(labels.Segmentation(mask, ("bg", "road")))})
            ],
        )
    )
    metadata_stub.UpsertMetadata(
        mpb.UpsertMetadataRequest(
            datasource_id=other,
            create_missing=True,
            datapoints=[
                mpb.DatapointValues(path="a", values={"seg": to_proto_value(labels.Segmentation(b"another", ("bg",)))})
            ],
        )
    )
    assert fetch(flight, blob_ticket(digest, holder))[0] == mask
    message = error_text(flight, blob_ticket(digest, other))
    assert message.startswith("PERMISSION_DENIED: ") and "holds no blob" in message

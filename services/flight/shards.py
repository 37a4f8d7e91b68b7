"""Bag shards over Flight: a registered bag dataset described one endpoint per shard, and a shard (a range
of it, some of its keys) streamed as Arrow record batches.

A stream has one row per datapoint and one column per key: ``binary`` for a scalar key, ``list<binary>``
for a sequence key, each value the record's *encoded* bytes exactly as the bag holds them. The server
never decodes (it needs no codecs, and what the client decodes is byte-for-byte what a local reader
would); the client decodes with the format's decoders. The schema's metadata carries the spec and the
length of every shard, so a client plans its reads from one GetFlightInfo.

A range is read per key as one run of records, checked against the bag's block checksums and handed to
Arrow as a view of the mapped file (no copy); opened shards and dataset locations are kept between calls
(:mod:`shard_cache`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.flight as fl

from thresher.core.bag import BagError, DatasetReader, IncompleteDatasetError, ShardedDatasetReader
from thresher.core.bag import files as bag_files
from thresher.core.bag import spec as specs
from thresher.core.bag.sharded import shard_name
from thresher.core.bag.spec import SHARD_LENGTHS_KEY, SPEC_KEY
from thresher.services.auth.forwarded_headers import Metadata
from thresher.services.flight import shard_cache
from thresher.services.flight.backend import BAGS
from thresher.services.flight.flight_errors import invalid_argument, status_error
from thresher.services.flight.tickets import descriptor_path, parse_command
from thresher.v1 import flight_pb2, metadata_service_pb2_grpc
from thresher.v1 import metadata_service_pb2 as mpb

CALL_TIMEOUT = 30.0
# A batch aims at about this many bytes: big enough to amortise per-batch costs, small enough to pipeline.
TARGET_BATCH_BYTES = 4 << 20
FIRST_BATCH_ROWS = 256


def split_dataset_name(dataset: str) -> tuple[str, str]:
    """``owner/ns/name`` -> (``owner/ns``, ``name``): the namespace is everything before the last ``/``."""
    namespace, sep, name = dataset.rpartition("/")
    if not sep or not namespace or not name:
        raise invalid_argument(f"bag dataset {dataset!r}: expected 'owner/namespace/name'")
    return namespace, name


def arrow_schema(
    spec: dict[str, str], shard_lengths: Sequence[int] | None = None, keys: Sequence[str] | None = None
) -> pa.Schema:
    """The stream's schema for ``keys`` (default: all) of ``spec``; the spec (and lengths) in its metadata."""
    fields = [
        pa.field(key, pa.list_(pa.binary()) if specs.is_sequence(spec[key]) else pa.binary()) for key in (keys or spec)
    ]
    metadata = {SPEC_KEY: json.dumps(spec).encode()}
    if shard_lengths is not None:
        metadata[SHARD_LENGTHS_KEY] = json.dumps(list(shard_lengths)).encode()
    return pa.schema(fields, metadata=metadata)


def shard_ticket(dataset: str, shard: int, start: int = 0, stop: int = 0, keys: Sequence[str] = ()) -> bytes:
    """The ticket for rows ``[start, stop)`` (stop 0: to the end) of ``keys`` (none: all) of one shard."""
    ticket: bytes = flight_pb2.FlightTicket(
        bag_shard=flight_pb2.BagShardTicket(dataset=dataset, shard=shard, start=start, stop=stop, keys=list(keys))
    ).SerializeToString()
    return ticket


@contextlib.contextmanager
def bag_errors(dataset: str) -> Iterator[None]:
    """A dataset that is not there (or not complete) as NOT_FOUND, a damaged one as DATA_LOSS."""
    try:
        yield
    except (IncompleteDatasetError, FileNotFoundError) as error:
        raise status_error(grpc.StatusCode.NOT_FOUND, f"bag dataset {dataset!r}: {error}") from None
    except BagError as error:
        raise status_error(grpc.StatusCode.DATA_LOSS, f"bag dataset {dataset!r}: {error}") from None


def command_of(descriptor: fl.FlightDescriptor) -> flight_pb2.BagDatasetCommand | None:
    """The bag dataset a descriptor names, as a command: a ``bag_dataset`` FlightCommand, or the path
    ``[namespace, "bags", name]`` (what ListFlights lists, and what generic clients can write by hand);
    None for any other descriptor."""
    if descriptor.descriptor_type == fl.DescriptorType.PATH:
        path = descriptor_path(descriptor)
        if len(path) == 3 and path[1] == BAGS:
            return flight_pb2.BagDatasetCommand(dataset=f"{path[0]}/{path[2]}")
        return None
    if descriptor.descriptor_type != fl.DescriptorType.CMD:
        return None
    command = parse_command(descriptor.command)
    return command.bag_dataset if command.WhichOneof("kind") == "bag_dataset" else None


def peer_location(peer: str, own: fl.Location) -> fl.Location:
    """A peer's ``host:port`` (or full URI) as a location with this server's scheme."""
    if "://" in peer:
        return fl.Location(peer)
    scheme = own.uri.decode().split("://", 1)[0]
    return fl.Location(f"{scheme}://{peer}")


class BagShards:
    """Serves registered bag datasets; ``locations()`` gives this server's location and its peers'."""

    def __init__(self, channel: grpc.Channel, locations: Callable[[], list[fl.Location]]) -> None:
        # The generated gRPC module has no type information: responses are annotated where they are read.
        self._stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)  # type: ignore[no-untyped-call]
        self._locations = locations
        self._uris = shard_cache.Locations(self._ask_uri)
        self._readers = shard_cache.OpenShards()

    def _uri(self, dataset: str, caller: Metadata) -> str:
        split_dataset_name(dataset)  # a malformed name fails before anything is asked
        return self._uris.get(dataset, caller)

    def _ask_uri(self, dataset: str, caller: Metadata) -> str:
        # Asked with the caller's credentials: the access rules of its namespace apply.
        namespace, name = split_dataset_name(dataset)
        request = mpb.GetBagDatasetRequest(namespace=namespace, name=name)
        response: mpb.GetBagDatasetResponse = self._stub.GetBagDataset(request, metadata=caller, timeout=CALL_TIMEOUT)
        return response.bag_dataset.uri

    def flight_info(
        self, command: flight_pb2.BagDatasetCommand, descriptor: fl.FlightDescriptor, caller: Metadata
    ) -> fl.FlightInfo:
        """One endpoint per shard; shard i lists the locations starting at i mod n, to spread the load."""
        uri = self._uri(command.dataset, caller)
        with bag_errors(command.dataset), ShardedDatasetReader(uri, None, verify=False) as reader:
            spec, lengths = reader.spec, [len(shard) for shard in reader.readers]
        locations = self._locations()
        endpoints = []
        for shard in range(len(lengths)):
            turn = shard % len(locations)
            endpoints.append(
                fl.FlightEndpoint(shard_ticket(command.dataset, shard), locations[turn:] + locations[:turn])
            )
        return fl.FlightInfo(arrow_schema(spec, lengths), descriptor, endpoints, sum(lengths), -1)

    def stream(self, ticket: flight_pb2.BagShardTicket, caller: Metadata) -> fl.GeneratorStream:
        """The rows ``[start, stop)`` of the ticket's shard as record batches, opened before returning so
        that a missing dataset, shard or key fails the call rather than the stream."""
        if ticket.shard < 0:
            raise invalid_argument(f"shard {ticket.shard} of {ticket.dataset!r}: shards count from 0")
        folder = bag_files.join(self._uri(ticket.dataset, caller), shard_name(ticket.shard))
        with bag_errors(ticket.dataset):
            reader = self._readers.get(folder)
        keys = list(ticket.keys) or list(reader.spec)
        unknown = [key for key in keys if key not in reader.spec]
        if unknown:
            raise invalid_argument(f"{ticket.dataset!r} has no keys {unknown}; its keys are {list(reader.spec)}")
        stop = ticket.stop or len(reader)
        if not 0 <= ticket.start <= stop <= len(reader):
            raise invalid_argument(
                f"rows [{ticket.start}, {stop}) are not within shard {ticket.shard} of "
                f"{ticket.dataset!r}, which has {len(reader)}"
            )
        schema = arrow_schema(reader.spec, keys=keys)
        batches = _batches(reader, schema, keys, ticket.start, stop, ticket.dataset)
        return fl.GeneratorStream(schema, _forgetting_on_error(batches, lambda: self._readers.forget(folder)))


def _forgetting_on_error(batches: Iterator[pa.RecordBatch], forget: Callable[[], None]) -> Iterator[pa.RecordBatch]:
    """Passes batches on; a shard that failed to read is not kept open (it may have been written anew)."""
    try:
        yield from batches
    except fl.FlightError:
        forget()
        raise


def _batches(
    reader: DatasetReader, schema: pa.Schema, keys: list[str], start: int, stop: int, dataset: str
) -> Iterator[pa.RecordBatch]:
    """Record batches of about TARGET_BATCH_BYTES: the rows per batch adapt to the records' sizes."""
    rows = FIRST_BATCH_ROWS
    position = start
    while position < stop:
        end = min(stop, position + rows)
        with bag_errors(dataset):
            blocks = reader.read_blocks(position, end, keys)
            columns = [_column(reader, blocks[key], position, end, key, field.type) for key, field in zip(keys, schema)]
        batch = pa.RecordBatch.from_arrays(columns, schema=schema)
        yield batch
        rows = max(1, min(1 << 16, int((end - position) * TARGET_BATCH_BYTES / max(1, batch.nbytes))))
        position = end


def _column(
    reader: DatasetReader,
    block: tuple[Any, Any, list[int] | None] | None,
    start: int,
    stop: int,
    key: str,
    type_: pa.DataType,
) -> pa.Array:
    """Key ``key`` of rows ``[start, stop)`` as an Arrow array over the bytes read: no copy per record."""
    if block is None:  # records not back to back (a dataset written by other means): value by value
        return pa.array(reader[start:stop, {key: True}][key], type=type_)
    buffer, bounds, counts = block
    if len(buffer) >= 1 << 31:
        raise status_error(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"{key!r}: rows [{start}, {stop}) hold {len(buffer)} bytes, more than one Arrow binary array holds",
        )
    records = pa.Array.from_buffers(
        pa.binary(), len(bounds) - 1, [None, pa.py_buffer(bounds.astype(np.int32)), pa.py_buffer(buffer)]
    )
    if counts is None:
        return records
    offsets = np.zeros(len(counts) + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), records, type=type_)

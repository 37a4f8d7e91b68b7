"""GetFlightInfo and DoGet for bag datasets, and the Remote source reading them (failover included)."""

from __future__ import annotations

import json
import os
import pickle
import shutil

import numpy as np
import pyarrow.flight as fl
import pytest

import thresher
from thresher.bag import ShardedDatasetReader, ShardedDatasetWriter, decoders, encoders
from thresher.core.bag.sharded import shard_name
from thresher.core.errors import NotFoundError
from thresher.services.flight.shards import SHARD_LENGTHS_KEY, SPEC_KEY, shard_ticket
from thresher.sources import Remote
from thresher.v1 import flight_pb2

from .conftest import SPEC


def _descriptor(dataset: str) -> fl.FlightDescriptor:
    command = flight_pb2.FlightCommand(bag_dataset=flight_pb2.BagDatasetCommand(dataset=dataset))
    return fl.FlightDescriptor.for_command(command.SerializeToString())


def _client(server) -> fl.FlightClient:
    return fl.FlightClient(f"grpc://127.0.0.1:{server.port}")


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else a[k] == b[k] for k in a
    )


def test_flight_info_lists_shards_with_both_servers(flight_pair, bag_dataset):
    dataset, _ = bag_dataset(10, 4)
    a, b = flight_pair
    info = _client(a).get_flight_info(_descriptor(dataset))
    assert info.total_records == 10 and len(info.endpoints) == 3
    assert json.loads(info.schema.metadata[SPEC_KEY]) == dict(sorted(SPEC.items()))
    assert json.loads(info.schema.metadata[SHARD_LENGTHS_KEY]) == [4, 4, 2]
    assert info.schema.field("tokens").type.value_type == info.schema.field("x").type  # list<binary>, binary
    # Shard i starts its locations at server i mod 2: the load is spread over both.
    firsts = [endpoint.locations[0] for endpoint in info.endpoints]
    assert firsts == [a.location, b.location, a.location]
    assert all(
        sorted(location.uri for location in endpoint.locations) == sorted([a.location.uri, b.location.uri])
        for endpoint in info.endpoints
    )
    ticket = flight_pb2.FlightTicket.FromString(info.endpoints[2].ticket.ticket)
    assert ticket.bag_shard.dataset == dataset and ticket.bag_shard.shard == 2


def test_do_get_streams_ranges_and_keys_exactly(flight_pair, bag_dataset):
    dataset, folder = bag_dataset(10, 4)
    client = _client(flight_pair[1])
    with ShardedDatasetReader(folder, None) as raw:
        whole = client.do_get(fl.Ticket(shard_ticket(dataset, 1))).read_all()
        assert whole.num_rows == 4 and whole.column_names == sorted(SPEC)
        assert whole.to_pydict() == raw[4:8]
        part = client.do_get(fl.Ticket(shard_ticket(dataset, 1, 1, 3, ["tokens", "label"]))).read_all()
        assert part.column_names == ["tokens", "label"]
        expected = raw[5:7]
        assert part.to_pydict() == {"tokens": expected["tokens"], "label": expected["label"]}
    for bad, code in [
        (shard_ticket(dataset, 7), "NOT_FOUND"),
        (shard_ticket(dataset, 0, 2, 9), "INVALID_ARGUMENT"),
        (shard_ticket(dataset, 0, keys=["nope"]), "INVALID_ARGUMENT"),
        (shard_ticket(dataset + "x", 0), "NOT_FOUND"),
    ]:
        with pytest.raises(fl.FlightError, match=code):
            client.do_get(fl.Ticket(bad)).read_all()


def test_remote_equals_local_reader_and_pickles(flight_pair, bag_dataset, connect_to):
    dataset, folder = bag_dataset(10, 4)
    remote = Remote(dataset, connection=connect_to(flight_pair[0]), prefetch=1)
    copy = pickle.loads(pickle.dumps(remote))
    with ShardedDatasetReader(folder, decoders) as local:
        assert len(remote) == len(copy) == len(local) == 10
        for i in [9, 0, 5, 3, 4, 8]:
            assert _same(remote[i], local[i]) and _same(copy[i], local[i])
    with pytest.raises(NotFoundError):
        Remote(dataset + "-missing", connection=connect_to(flight_pair[0]))
    remote.close()


def test_rank_reads_only_its_shards(flight_pair, bag_dataset, connect_to):
    dataset, folder = bag_dataset(20, 4)  # shardlen == batch: rank r's batches are shards r, r + 2, ...
    remote = Remote(dataset, connection=connect_to(flight_pair[0]), batch=4, rank=1, world_size=2, prefetch=2)
    assert remote.plan == [(1, 0, 4), (3, 0, 4)]
    with ShardedDatasetReader(folder, decoders) as local:
        for i in [*range(4, 8), *range(12, 16)]:
            assert _same(remote[i], local[i])
    assert sorted(piece for piece, _ in remote.fetched) == [(1, 0, 4), (3, 0, 4)]
    # Batches that straddle shards become ranges of them.
    assert Remote(dataset, connection=connect_to(flight_pair[0]), batch=3, rank=0, world_size=2).plan == [
        (0, 0, 3),
        (1, 2, 4),
        (2, 0, 1),
        (3, 0, 3),
        (4, 2, 4),
    ]


def test_failover_when_a_server_dies_mid_epoch(flight_pair, bag_dataset, connect_to):
    dataset, folder = bag_dataset(24, 4)
    a, b = flight_pair
    remote = Remote(dataset, connection=connect_to(a), prefetch=0, threads=1)
    with ShardedDatasetReader(folder, decoders) as local:
        values = [remote[i] for i in range(8)]
        a.shutdown()
        values += [remote[i] for i in range(8, 24)]
        assert all(_same(value, local[i]) for i, value in enumerate(values))
    served = {piece[0]: uri for piece, uri in remote.fetched}
    a_uri, b_uri = a.location.uri.decode(), b.location.uri.decode()
    assert served[0] == a_uri and served[1] == b_uri
    # After A died, every shard, its own included, came from B.
    assert all(served[shard] == b_uri for shard in range(2, 6))


def _write_scalar_dataset(folder, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with ShardedDatasetWriter(folder, {"file": "bytes", "label": "int"}, encoders, shardlen=count) as writer:
        for i in range(count):
            writer.append({"file": rng.bytes(int(rng.integers(0, 9000))), "label": i})


def test_scalar_datasets_stream_in_bulk_exactly_and_a_rewritten_shard_is_served_anew(
    flight_pair, local_services, namespace, tmp_path
):
    folder = tmp_path / "scalars"
    _write_scalar_dataset(folder, 600, seed=1)  # references pass 127 and 255; ~2.6 MB: several batches
    thresher.datasets.register_export(namespace, "scalars", folder, connection=local_services.connect())
    dataset, client = f"{namespace}/scalars", _client(flight_pair[0])
    with ShardedDatasetReader(folder, None) as raw:
        assert client.do_get(fl.Ticket(shard_ticket(dataset, 0))).read_all().to_pydict() == raw[0:600]
        part = client.do_get(fl.Ticket(shard_ticket(dataset, 0, 250, 390, ["file"]))).read_all()
        assert part.to_pydict() == {"file": raw[250:390]["file"]}
    shutil.rmtree(folder)
    _write_scalar_dataset(folder, 600, seed=2)  # the same place, new content: export again
    with ShardedDatasetReader(folder, None) as raw:
        assert client.do_get(fl.Ticket(shard_ticket(dataset, 0))).read_all().to_pydict() == raw[0:600]


def test_a_damaged_shard_fails_the_stream_naming_the_dataset(flight_pair, local_services, namespace, tmp_path):
    folder = tmp_path / "damaged"
    _write_scalar_dataset(folder, 300, seed=3)
    thresher.datasets.register_export(namespace, "damaged", folder, connection=local_services.connect())
    dataset, client = f"{namespace}/damaged", _client(flight_pair[1])
    assert client.do_get(fl.Ticket(shard_ticket(dataset, 0))).read_all().num_rows == 300
    bag = folder / shard_name(0) / "file.bag"
    with open(bag, "r+b") as file:  # in place, as rot would: the server's open mapping sees it
        file.seek(os.path.getsize(bag) // 2)
        byte = file.read(1)
        file.seek(-1, os.SEEK_CUR)
        file.write(bytes([byte[0] ^ 1]))
    with pytest.raises(fl.FlightError, match=f"DATA_LOSS.*{dataset}.*checksum"):
        client.do_get(fl.Ticket(shard_ticket(dataset, 0))).read_all()


def test_a_dataset_registered_after_a_miss_is_found_at_once(flight_pair, local_services, namespace, tmp_path):
    folder = tmp_path / "late"
    _write_scalar_dataset(folder, 10, seed=4)
    client = _client(flight_pair[0])
    with pytest.raises(fl.FlightError, match="NOT_FOUND"):
        client.do_get(fl.Ticket(shard_ticket(f"{namespace}/late", 0))).read_all()
    thresher.datasets.register_export(namespace, "late", folder, connection=local_services.connect())
    assert client.do_get(fl.Ticket(shard_ticket(f"{namespace}/late", 0))).read_all().num_rows == 10


def test_generic_clients_find_bag_datasets_by_path_in_listings_and_schemas(
    flight_pair, bag_dataset, local_services, namespace, tmp_path
):
    dataset, folder = bag_dataset(10, 4)
    name = dataset.rsplit("/", 1)[1]
    client = _client(flight_pair[0])
    path = fl.FlightDescriptor.for_path(namespace, "bags", name)
    info = client.get_flight_info(path)
    assert info.total_records == 10 and len(info.endpoints) == 3
    assert client.get_schema(path).schema == info.schema == client.get_schema(_descriptor(dataset)).schema
    with ShardedDatasetReader(folder, None) as raw:
        assert client.do_get(info.endpoints[1].ticket).read_all().to_pydict() == raw[4:8]
    thresher.datasets.register_export(
        namespace, "gone", tmp_path / "never-written", connection=local_services.connect()
    )
    listed = {
        tuple(part.decode() for part in info.descriptor.path): info for info in client.list_flights(namespace.encode())
    }
    assert listed[(namespace, "bags", name)].total_records == 10
    assert listed[(namespace, "bags", "gone")].endpoints == []  # listed, without shards, rather than failing the list
    with pytest.raises(fl.FlightError, match="NOT_FOUND"):
        client.get_flight_info(fl.FlightDescriptor.for_path(namespace, "bags", "gone"))

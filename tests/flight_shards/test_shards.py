"""GetFlightInfo and DoGet for bag datasets, and the Remote source reading them (failover included)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pyarrow.flight as fl
import pytest

from thresher.bag import ShardedDatasetReader, decoders
from thresher.errors import NotFoundError
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
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else a[k] == b[k]
                                        for k in a)


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
    assert all(sorted(l.uri for l in endpoint.locations) == sorted([a.location.uri, b.location.uri])
               for endpoint in info.endpoints)
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
    for bad, code in [(shard_ticket(dataset, 7), "NOT_FOUND"), (shard_ticket(dataset, 0, 2, 9), "INVALID_ARGUMENT"),
                      (shard_ticket(dataset, 0, keys=["nope"]), "INVALID_ARGUMENT"),
                      (shard_ticket(dataset + "x", 0), "NOT_FOUND")]:
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
        (0, 0, 3), (1, 2, 4), (2, 0, 1), (3, 0, 3), (4, 2, 4)]


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

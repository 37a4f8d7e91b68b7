"""Two flight servers over the suite's metadata service, each listing the other as a peer, and bag datasets
registered for them to serve."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import thresher
from thresher.bag import ShardedDatasetWriter, encoders
from thresher.connection import Connection
from thresher.services.flight.server import create_server

_names = itertools.count()


@pytest.fixture
def flight_pair(local_services):
    """Two flight servers, A and B, each the other's peer; a server a test shut down stays down."""
    servers = [
        create_server("127.0.0.1:0", local_services.metadata_address, home=local_services.home)[0] for _ in range(2)
    ]
    servers[0].peers, servers[1].peers = [servers[1].location], [servers[0].location]
    yield servers
    for server in servers:
        try:
            server.shutdown()
        except Exception:  # shut down by the test already
            pass


@pytest.fixture
def connect_to(local_services):
    """A connection whose flight address is the given server's."""

    def connect(server) -> Connection:
        return Connection(local_services.metadata_address, f"127.0.0.1:{server.port}")

    return connect


def points(count: int) -> list[dict]:
    """Datapoints with a scalar of each kind and a sequence key."""
    rng = np.random.default_rng(7)
    return [
        {
            "label": i % 3,
            "name": f"p{i}",
            "x": rng.standard_normal(3).astype(np.float32),
            "tokens": [f"t{i}-{j}".encode() for j in range(i % 4)],
        }
        for i in range(count)
    ]


SPEC = {"label": "int", "name": "utf8", "x": "array", "tokens": "bytes[]"}


@pytest.fixture
def bag_dataset(local_services, namespace, tmp_path):
    """Writes ``count`` points in shards of ``shardlen`` and registers them; returns (name, folder)."""

    def make(count: int = 10, shardlen: int = 4) -> tuple[str, str]:
        folder = tmp_path / f"bag{next(_names)}"
        with ShardedDatasetWriter(folder, SPEC, encoders, shardlen=shardlen) as writer:
            for point in points(count):
                writer.append(point)
        name = f"bag{next(_names)}"
        thresher.datasets.register_export(namespace, name, folder, connection=local_services.connect())
        return f"{namespace}/{name}", str(folder)

    return make

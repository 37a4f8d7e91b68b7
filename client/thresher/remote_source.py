"""A registered bag dataset read through the flight service, as a source for ``Loader``.

``Remote("owner/ns/name")`` asks flight for the dataset's endpoints (one per shard, each with the flight
nodes that serve it), then behaves like a local ``ShardedDatasetReader``: ``len()`` and ``remote[i]``
(a decoded dict), value for value the same. Records travel encoded and are decoded here with the format
decoders, so nothing is lost or re-encoded on the way.

Reads are planned in *pieces* (a shard, or a row range of one) fetched ahead on background threads and
kept in a small cache:

- by default the plan is every shard, whole, in order;
- with ``batch``, ``rank`` and ``world_size`` (the Loader's), the plan holds only the rows of the steps
  this rank's batches read when the source is traversed in order: rank r reads global batches
  ``r, r + world_size, ...``, global batch g being steps ``[g * batch, (g + 1) * batch)``, and step s is
  datapoint s. With ``shardlen == batch`` (or a multiple of ``batch * world_size``, …) each rank thus
  fetches whole shards of its own and no others; otherwise only ranges of the shards it shares.

Any datapoint outside the plan (a shuffled order, a second pass) is still served: its whole shard is
fetched on demand. A location that fails (a node that died) is skipped for the next one of the endpoint,
and tried last from then on. The source pickles without its connections, so loader workers reconnect.
"""

from __future__ import annotations

import bisect
import collections
import concurrent.futures
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import pyarrow as pa
import pyarrow.flight as fl

from thresher.connection import Connection, resolve
from thresher.core.bag import formats
from thresher.core.bag import spec as specs
from thresher.core.bag.spec import SHARD_LENGTHS_KEY, SPEC_KEY
from thresher.v1 import flight_pb2

# Errors that mean "this node cannot answer", so the next location of the endpoint is tried.
_FAILOVER_ERRORS = (fl.FlightUnavailableError, fl.FlightTimedOutError, ConnectionError)

Piece = tuple[int, int, int]  # (shard, start, stop) rows of a shard


class RemoteSourceError(RuntimeError):
    """A piece of a remote dataset could not be fetched from any location of its endpoint."""


class Remote:
    """The bag dataset registered as ``dataset`` (``owner/ns/name``), read through flight.

    Args:
        dataset: the registered name (``thresher.datasets.register_export``).
        connection: the connection to ask for the flight info (default: the default connection).
        decoders: type -> decoder (default ``thresher.bag.decoders``); None returns the encoded bytes.
        keys: the keys to read (default: all).
        batch, rank, world_size: plan reads for this rank of a Loader (see the module docstring).
        prefetch: pieces fetched ahead of the one in use.
        threads: concurrent fetches.
    """

    def __init__(
        self,
        dataset: str,
        *,
        connection: Connection | None = None,
        decoders: Mapping[str, Callable[..., Any]] | None = formats.decoders,
        keys: Sequence[str] | None = None,
        batch: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        prefetch: int = 4,
        threads: int = 4,
    ) -> None:
        conn = resolve(connection)
        command = flight_pb2.FlightCommand(bag_dataset=flight_pb2.BagDatasetCommand(dataset=dataset))
        descriptor = fl.FlightDescriptor.for_command(command.SerializeToString())
        info = conn._flight_call(  # noqa: SLF001 - the connection's retry and error mapping
            lambda: conn.flight.get_flight_info(descriptor, options=conn._flight_options), idempotent=True
        )
        metadata = info.schema.metadata or {}
        self.dataset = dataset
        self._spec = json.loads(metadata[SPEC_KEY])
        self.keys = list(keys) if keys else list(self._spec)
        unknown = [key for key in self.keys if key not in self._spec]
        if unknown:
            raise KeyError(f"{dataset!r} has no keys {unknown}; its keys are {list(self._spec)}")
        self.lengths = json.loads(metadata[SHARD_LENGTHS_KEY])
        self.locations = [[location.uri.decode() for location in endpoint.locations] for endpoint in info.endpoints]
        self._tickets = [
            flight_pb2.FlightTicket.FromString(endpoint.ticket.ticket).bag_shard for endpoint in info.endpoints
        ]
        self.stops = list(_cumulative(self.lengths))
        self._decode = specs.codecs({k: self._spec[k] for k in self.keys}, decoders, "decoder")
        # What reconnecting in a worker needs: the caller's headers and TLS roots (private to the connection).
        self._headers = [(k.encode(), v.encode()) for k, v in conn._grpc_metadata]  # noqa: SLF001
        self._tls_roots = conn._root_certificates  # noqa: SLF001
        self.plan = self._plan(batch, rank, world_size)
        self.prefetch = max(0, int(prefetch))
        self.threads = max(1, int(threads))
        self._start()

    # -- planning ---------------------------------------------------------------------------------

    def _plan(self, batch: int | None, rank: int, world_size: int) -> list[Piece]:
        if batch is None:
            return [(shard, 0, length) for shard, length in enumerate(self.lengths) if length]
        if not 0 <= rank < world_size or batch < 1:
            raise ValueError(f"need batch >= 1 and 0 <= rank < world_size, got {batch}, {rank}, {world_size}")
        total = len(self)
        return self._pieces_for(
            range(first, min(total, first + batch)) for first in range(rank * batch, total, batch * world_size)
        )

    def _pieces_for(self, ranges: Iterable[range]) -> list[Piece]:
        """The pieces that hold the rows of ``ranges``, in order; adjacent rows of one shard merged."""
        pieces: list[Piece] = []
        for rows in ranges:
            for piece in self._pieces_of(rows.start, min(rows.stop, len(self))):
                last = pieces[-1] if pieces else None
                if last and last[0] == piece[0] and last[2] == piece[1]:
                    pieces[-1] = (last[0], last[1], piece[2])  # contiguous in one shard: one fetch
                else:
                    pieces.append(piece)
        return pieces

    def plan_reads(self, ranges: Iterable[range], size: int | None = None) -> None:
        """Plans reads for the steps of ``ranges`` in order (the Loader calls this with its rank's batches).

        A loader resumed at another step, or with another number of ranks, re-plans, so each rank fetches
        what its own batches read from then on. What was fetched and cached is dropped.
        """
        self.close()
        self.plan = self._pieces_for(ranges)
        self._start()

    def _pieces_of(self, start: int, stop: int) -> list[Piece]:
        """The global rows ``[start, stop)`` as row ranges of shards."""
        pieces = []
        while start < stop:
            shard = bisect.bisect_right(self.stops, start)
            base = self.stops[shard - 1] if shard else 0
            end = min(stop, self.stops[shard])
            pieces.append((shard, start - base, end - base))
            start = end
        return pieces

    # -- state that does not pickle ----------------------------------------------------------------

    def _start(self) -> None:
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._futures: dict[Piece, concurrent.futures.Future[dict[str, list[Any]]]] = {}
        self._cache: collections.OrderedDict[Piece, dict[str, list[Any]]] = collections.OrderedDict()
        self._clients: dict[str, fl.FlightClient] = {}
        self._failed: set[str] = set()
        self._by_shard: dict[int, list[Piece]] = collections.defaultdict(list)
        for piece in self.plan:
            self._by_shard[piece[0]].append(piece)
        self._position = {piece: n for n, piece in enumerate(self.plan)}
        self.fetched: list[tuple[Piece, str]] = []  # every piece fetched and the location that served it

    def __getstate__(self) -> dict[str, Any]:
        keep = (
            "dataset",
            "_spec",
            "keys",
            "lengths",
            "locations",
            "_tickets",
            "stops",
            "_decode",
            "_headers",
            "_tls_roots",
            "plan",
            "prefetch",
            "threads",
        )
        state = {name: self.__dict__[name] for name in keep}
        state["_tickets"] = [ticket.SerializeToString() for ticket in self._tickets]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["_tickets"] = [flight_pb2.BagShardTicket.FromString(raw) for raw in state["_tickets"]]
        self.__dict__.update(state)
        self._start()

    def close(self) -> None:
        """Stop fetching and drop the cache and connections."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        self._cache.clear()

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    # -- reading ------------------------------------------------------------------------------------

    @property
    def spec(self) -> dict[str, str]:
        """The spec of the keys read."""
        return {key: self._spec[key] for key in self.keys}

    @property
    def shards(self) -> int:
        return len(self.lengths)

    def __len__(self) -> int:
        return self.stops[-1] if self.stops else 0

    def __getitem__(self, index: int) -> dict[str, Any]:
        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"{self.dataset}: datapoint {index} out of range for {len(self)}")
        shard = bisect.bisect_right(self.stops, i)
        row = i - (self.stops[shard - 1] if shard else 0)
        piece = self._piece_for(shard, row)
        columns = self._get(piece)
        at = row - piece[1]
        point = {}
        for key in self.keys:
            value, decode = columns[key][at], self._decode[key]
            if decode is not None:
                value = [decode(v) for v in value] if specs.is_sequence(self._spec[key]) else decode(value)
            point[key] = value
        return point

    def _piece_for(self, shard: int, row: int) -> Piece:
        planned = self._by_shard.get(shard, ())
        n = bisect.bisect_right(planned, (shard, row, float("inf"))) - 1
        if n >= 0 and planned[n][1] <= row < planned[n][2]:
            return planned[n]
        return shard, 0, self.lengths[shard]  # not planned: the whole shard, on demand

    def _get(self, piece: Piece) -> dict[str, list[Any]]:
        with self._lock:
            columns = self._cache.get(piece)
            if columns is not None:
                self._cache.move_to_end(piece)
            future = self._submit(piece) if columns is None else None
            self._read_ahead(piece)
        if columns is None:
            assert future is not None, "submitted above whenever nothing was cached"
            columns = future.result()
        return columns

    def _read_ahead(self, piece: Piece) -> None:
        position = self._position.get(piece)
        if position is not None:
            for later in self.plan[position + 1 : position + 1 + self.prefetch]:
                if later not in self._cache:
                    self._submit(later)

    def _submit(self, piece: Piece) -> concurrent.futures.Future[dict[str, list[Any]]]:
        future = self._futures.get(piece)
        if future is None:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self.threads, thread_name_prefix="thresher-remote")
            future = self._futures[piece] = self._pool.submit(self._fetch_into_cache, piece)
        return future

    def _fetch_into_cache(self, piece: Piece) -> dict[str, list[Any]]:
        try:
            columns, uri = self._fetch(piece)
        finally:
            with self._lock:
                self._futures.pop(piece, None)
        with self._lock:
            self._cache[piece] = columns
            # Keep what is ahead (the prefetch window) and the piece in use; drop the least recently used.
            while len(self._cache) > self.prefetch + 2:
                self._cache.popitem(last=False)
            self.fetched.append((piece, uri))
        return columns

    def _fetch(self, piece: Piece) -> tuple[dict[str, list[Any]], str]:
        shard, start, stop = piece
        ticket = flight_pb2.BagShardTicket()
        ticket.CopyFrom(self._tickets[shard])
        ticket.start, ticket.stop = start, stop
        del ticket.keys[:]
        if self.keys != list(self._spec):
            ticket.keys.extend(self.keys)
        raw = fl.Ticket(flight_pb2.FlightTicket(bag_shard=ticket).SerializeToString())
        # Locations that failed before go last: they may be back, but should not cost every fetch a timeout.
        locations = sorted(self.locations[shard], key=lambda uri: uri in self._failed)
        errors: list[str] = []
        for uri in locations:
            try:
                table = self._client(uri).do_get(raw, options=fl.FlightCallOptions(headers=self._headers)).read_all()
            except _FAILOVER_ERRORS as error:
                self._failed.add(uri)
                errors.append(f"{uri}: {error}")
                continue
            if table.num_rows != stop - start:
                raise RemoteSourceError(
                    f"{self.dataset}: shard {shard} rows [{start}, {stop}) came back with "
                    f"{table.num_rows} rows from {uri}"
                )
            return {key: _values(table.column(key)) for key in self.keys}, uri
        raise RemoteSourceError(
            f"{self.dataset}: shard {shard} could not be read from any of its locations: " + "; ".join(errors)
        )

    def _client(self, uri: str) -> fl.FlightClient:
        with self._lock:
            client = self._clients.get(uri)
            if client is None:
                client = self._clients[uri] = fl.FlightClient(uri, tls_root_certs=self._tls_roots)
            return client


def _values(column: pa.ChunkedArray) -> list[Any]:
    """A column's values as bytes (lists of bytes for a sequence key)."""
    return cast(list[Any], column.to_pylist())  # pyarrow has no type information


def _cumulative(lengths: Sequence[int]) -> Iterator[int]:
    total = 0
    for length in lengths:
        total += length
        yield total

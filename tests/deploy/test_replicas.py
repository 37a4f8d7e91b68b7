"""Two metadata and two flight replicas over one PostgreSQL database, under concurrent writers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pyarrow as pa
import pytest

from thresher.core.transport import open_channel
from thresher.core.types import to_proto_value
from thresher.v1 import common_pb2, metadata_service_pb2_grpc
from thresher.v1 import metadata_service_pb2 as pb

ROUNDS = 30


@pytest.fixture(scope="module")
def stubs(replicas):
    channels = [open_channel(address) for address in replicas.metadata_addresses]
    for channel in channels:
        grpc.channel_ready_future(channel).result(timeout=30)
    yield [metadata_service_pb2_grpc.MetadataServiceStub(channel) for channel in channels]
    for channel in channels:
        channel.close()


def _together(*calls):
    """Runs the calls at the same moment on their own threads; returns each result or exception."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        try:
            return call()
        except grpc.RpcError as error:
            return error

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _upsert(stub, datasource_id, path, **values):
    return lambda: stub.UpsertMetadata(
        pb.UpsertMetadataRequest(
            datasource_id=datasource_id,
            datapoints=[pb.DatapointValues(path=path, values={k: to_proto_value(v) for k, v in values.items()})],
            create_missing=True,
        )
    )


def _rows(stub, datasource_id) -> dict[str, dict]:
    from thresher.core.arrow_io import read_batch, read_schema

    responses = iter(stub.ExecuteQuery(pb.ExecuteQueryRequest(query=common_pb2.Query(datasource_id=datasource_id))))
    schema = read_schema(next(responses).schema)
    table = pa.Table.from_batches([read_batch(r.record_batch, schema) for r in responses], schema)
    return {row.pop("path"): row for row in table.to_pylist()}


def _fields(stub, datasource_id) -> dict[str, int]:
    datasource = stub.GetDatasource(pb.GetDatasourceRequest(id=datasource_id)).datasource
    return {f.name: f.type for f in datasource.fields}


def test_a_field_type_is_fixed_exactly_once_when_replicas_race(stubs, namespace):
    for round_ in range(ROUNDS):
        source = (
            stubs[0]
            .CreateDatasource(
                pb.CreateDatasourceRequest(namespace=namespace, name=f"race{round_}", source_uri="file:///x")
            )
            .datasource
        )
        as_int, as_text = _together(_upsert(stubs[0], source.id, "a", x=1), _upsert(stubs[1], source.id, "b", x="one"))
        failures = [r for r in (as_int, as_text) if isinstance(r, grpc.RpcError)]
        assert len(failures) == 1, f"round {round_}: {as_int!r} {as_text!r}"
        assert failures[0].code() == grpc.StatusCode.INVALID_ARGUMENT and "'x' has type" in failures[0].details()
        winner_type = common_pb2.FIELD_TYPE_STRING if failures[0] is as_int else common_pb2.FIELD_TYPE_INT
        for stub in stubs:
            assert _fields(stub, source.id) == {"x": winner_type}
            assert list(_rows(stub, source.id)) == (["b"] if failures[0] is as_int else ["a"])


def test_concurrent_writers_on_both_replicas_lose_no_update(stubs, namespace):
    source = (
        stubs[0]
        .CreateDatasource(pb.CreateDatasourceRequest(namespace=namespace, name="shared", source_uri="file:///x"))
        .datasource
    )
    writers, writes = 4, 15

    def writer(w: int) -> None:
        stub = stubs[w % 2]
        for i in range(writes):
            # Every writer writes its own field on the same paths, some of which are new to all of them.
            _upsert(stub, source.id, f"p{i}", **{f"w{w}": i})()

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(writer, range(writers)))
    for stub in stubs:
        rows = _rows(stub, source.id)
        assert sorted(rows) == sorted(f"p{i}" for i in range(writes))
        assert all(rows[f"p{i}"][f"w{w}"] == i for i in range(writes) for w in range(writers))
        assert len({row["datapoint_id"] for row in rows.values()}) == writes


def test_get_or_create_from_both_replicas_creates_one_datasource(stubs, namespace):
    for round_ in range(ROUNDS):
        request = pb.GetOrCreateDatasourceRequest(namespace=namespace, name=f"once{round_}", source_uri="file:///x")
        first, second = _together(
            lambda: stubs[0].GetOrCreateDatasource(request), lambda: stubs[1].GetOrCreateDatasource(request)
        )
        assert first.datasource.id == second.datasource.id and first.created != second.created


def test_saved_datasets_and_uploads_are_visible_on_every_replica(replicas, stubs, namespace):
    source = (
        stubs[0]
        .CreateDatasource(pb.CreateDatasourceRequest(namespace=namespace, name="seen", source_uri="file:///x"))
        .datasource
    )
    through_first = replicas.connect(0)
    through_first.upsert_table(source.id, pa.table({"path": ["a", "b"], "n": [1, 2]}), "path", create_missing=True)
    query = common_pb2.Query(
        datasource_id=source.id,
        filter=common_pb2.Filter(
            comparison=common_pb2.Comparison(field="n", op=common_pb2.COMPARISON_OPERATOR_GE, value=to_proto_value(2))
        ),
    )
    saved = stubs[0].SaveDataset(pb.SaveDatasetRequest(namespace=namespace, name="big", query=query)).dataset
    for replica, stub in enumerate(stubs):
        assert stub.GetDataset(pb.GetDatasetRequest(namespace=namespace, name="big")).dataset == saved
        assert replicas.connect(replica).read_query(saved.query)["path"].to_pylist() == ["b"]


def test_partitions_planned_on_one_flight_replica_are_served_by_the_other(replicas, stubs, namespace):
    import pyarrow.flight as fl

    from thresher.v1 import flight_pb2

    source = (
        stubs[0]
        .CreateDatasource(pb.CreateDatasourceRequest(namespace=namespace, name="parted", source_uri="file:///x"))
        .datasource
    )
    replicas.connect(0).upsert_table(
        source.id,
        pa.table({"path": [f"p{i:02d}" for i in range(20)], "n": list(range(20))}),
        "path",
        create_missing=True,
    )
    first, second = replicas.flight_servers
    saved = first.partition_rows, first.peers
    first.partition_rows, first.peers = 6, [second.location]
    try:
        query = common_pb2.Query(datasource_id=source.id)
        descriptor = fl.FlightDescriptor.for_command(flight_pb2.FlightCommand(query=query).SerializeToString())
        with fl.connect(f"grpc://{replicas.flight_addresses[0]}") as client:
            info = client.get_flight_info(descriptor)
        assert (info.total_records, len(info.endpoints)) == (20, 4)
        with fl.connect(f"grpc://{replicas.flight_addresses[1]}") as other:  # the other metadata replica behind it
            pieces = [other.do_get(endpoint.ticket).read_all() for endpoint in info.endpoints]
        whole = replicas.connect(1).read_query(query)
        assert pa.concat_tables(pieces).equals(whole)
        assert replicas.connect(0).read_query(query).equals(whole)  # read in 4 partitions, in parallel
    finally:
        first.partition_rows, first.peers = saved

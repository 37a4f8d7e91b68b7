"""Faults of the S3 and GCS endpoints under the scanner, the flight service's file and blob reads, and
downloads straight from the bucket: an endpoint that goes silent, is slow but alive, answers 503, or
disappears mid-stream. Each test runs over S3 (moto) and GCS (the emulator), with a ``FaultProxy`` in
front of the endpoint; the services learn its URL from ``$THRESHER_S3_ENDPOINT_URL`` /
``$STORAGE_EMULATOR_HOST`` and their timeouts from ``$THRESHER_STORAGE_*``, read when a storage opens.
"""

from __future__ import annotations

import dataclasses
import io
import os
import warnings

import pyarrow as pa
import pyarrow.flight as fl
import pytest
from PIL import Image

import thresher
from tests.downloads.conftest import indexed
from tests.reliability.proxy import FaultProxy
from thresher.core import status
from thresher.core.errors import ScanFailedError, ScanInProgressWarning
from thresher.core.storage import Storage, open_storage
from thresher.core.storage.blobs import BlobStore
from thresher.core.storage.storage_errors import StorageUnavailableError
from thresher.core.transport import open_channel
from thresher.services.flight.servicer import ThresherFlightServer
from thresher.v1 import flight_pb2

# Every case waits out read timeouts and retries through a fault proxy: seconds each, over two endpoints.
# The quick selection keeps tests/storage/test_timeouts.py for the settings themselves.
pytestmark = pytest.mark.slow

# Short enough to keep the suite quick, long enough that a healthy loopback endpoint never trips them.
TIMEOUTS = {
    "THRESHER_STORAGE_CONNECT_TIMEOUT": "1",
    "THRESHER_STORAGE_READ_TIMEOUT": "1",
    "THRESHER_STORAGE_RETRIES": "1",
    "THRESHER_STORAGE_RETRY_DEADLINE": "20",
}
ATTEMPTS = 2  # THRESHER_STORAGE_RETRIES + 1
ENDPOINT_ENV = {"s3": "THRESHER_S3_ENDPOINT_URL", "gs": "STORAGE_EMULATOR_HOST"}
# A slow endpoint: a pause well under the read timeout before each small chunk, so that a whole answer
# takes longer than the read timeout while no single wait does.
SLOW_DELAY, SLOW_CHUNK = 0.05, 2048
SIZE = 3 * 1024 * 1024
CALL = fl.FlightCallOptions(timeout=120)  # a hang fails the test instead of stalling the suite


@dataclasses.dataclass
class Faulty:
    """A new bucket on the S3 or GCS test endpoint, and a fault proxy in front of that endpoint."""

    scheme: str
    bucket: str
    endpoint_url: str
    proxy: FaultProxy
    monkeypatch: pytest.MonkeyPatch

    def uri(self, prefix: str = "data") -> str:
        return f"{self.scheme}://{self.bucket}/{prefix}"

    def direct(self, prefix: str = "data") -> Storage:
        """The storage at ``prefix`` on the endpoint itself, past the proxy (to set up and check data)."""
        return open_storage(self.uri(prefix), endpoint_url=self.endpoint_url)

    def route_through_proxy(self) -> None:
        """Points every storage opened from now on (services' included) at the proxy, with short timeouts."""
        self.monkeypatch.setenv(ENDPOINT_ENV[self.scheme], self.proxy.url)
        for name, value in TIMEOUTS.items():
            self.monkeypatch.setenv(name, value)


@pytest.fixture(params=["s3", "gs"])
def faulty(request, monkeypatch):
    kind = {"s3": "s3", "gs": "gcs"}[request.param]
    endpoint = request.getfixturevalue(f"{kind}_endpoint")
    bucket = request.getfixturevalue(f"{kind}_bucket")
    host, port = endpoint.url.removeprefix("http://").rsplit(":", 1)
    proxy = FaultProxy(host, int(port))
    yield Faulty(request.param, bucket, endpoint.url, proxy, monkeypatch)
    thresher.disable_bucket_downloaders()
    proxy.close()


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height)).save(out, "PNG")
    return out.getvalue()


def inject(proxy: FaultProxy, fault: str) -> None:
    """Makes the endpoint behind ``proxy`` go ``silent``, cut every answer a third of the way in (``cut short``:
    a retry that resumes gets no further than a third more), or vanish a third of the way in (``disappears``)."""
    if fault == "silent":
        proxy.hold()
    elif fault == "cut short":
        proxy.cut_after = SIZE // 3
    else:
        proxy.disappear_after(SIZE // 3)


def named_endpoint(message: str, faulty: Faulty) -> bool:
    return f"{'S3' if faulty.scheme == 's3' else 'GCS'} endpoint {faulty.proxy.url}" in message


# -- the scanner ---------------------------------------------------------------------------------------

FILES = {**{f"part{i % 4}/f{i:03d}.txt": b"x" * i for i in range(120)}, "img/a.png": png(9, 4)}


def _stored(faulty):
    """The endpoint's storage, reached directly, holding FILES."""
    storage = faulty.direct()
    for path, data in FILES.items():
        storage.write(path, data)
    return storage


def _rows(ds) -> dict[str, tuple]:
    """path -> (size, etag, width, height) of every datapoint."""
    with warnings.catch_warnings():  # the last scan may have failed on purpose; the rows are what is checked
        warnings.simplefilter("ignore", ScanInProgressWarning)
        table = ds.all().arrow
    return {row["path"]: (row["size"], row["etag"], row.get("width"), row.get("height")) for row in table.to_pylist()}


def _scanned(faulty: Faulty, client, namespace: str):
    """A datasource over ``FILES`` on the bucket, scanned once while the endpoint is healthy."""
    _stored(faulty)
    ds = thresher.get_or_create_datasource(namespace, "objects", faulty.uri(), connection=client)
    ds.wait_until_ready(timeout=60, progress=False)
    assert len(_rows(ds)) == len(FILES)
    return ds


def _rescan_fails(ds) -> str:
    ds.rescan()
    with pytest.raises(ScanFailedError) as failed:
        ds.wait_until_ready(timeout=90, progress=False)
    return str(failed.value)


@pytest.mark.timeout(180)
def test_a_scan_of_a_silent_endpoint_fails_naming_it_and_the_timeout_and_keeps_the_datapoints(
    faulty, client, namespace
):
    ds = _scanned(faulty, client, namespace)
    before = _rows(ds)
    faulty.route_through_proxy()
    faulty.proxy.hold()
    try:
        reason = _rescan_fails(ds)
    finally:
        faulty.proxy.release()
    assert named_endpoint(reason, faulty) and "timed out" in reason, reason
    assert "1 s read timeout ($THRESHER_STORAGE_READ_TIMEOUT)" in reason, reason
    assert _rows(ds) == before


@pytest.mark.timeout(180)
def test_a_scan_whose_endpoint_goes_silent_under_the_image_header_reads_fails_naming_it(faulty, client, namespace):
    _stored(faulty)
    faulty.route_through_proxy()
    faulty.proxy.hold_on = b"range: bytes="  # the listing answers; the first ranged read (a header) does not
    ds = thresher.get_or_create_datasource(namespace, "objects", faulty.uri(), connection=client)
    try:
        with pytest.raises(ScanFailedError) as failed:
            ds.wait_until_ready(timeout=90, progress=False)
    finally:
        faulty.proxy.release()
    reason = str(failed.value)
    assert named_endpoint(reason, faulty) and "timed out" in reason and "img/a.png" in reason, reason
    # Nothing was indexed without the size the endpoint failed to give.
    assert "img/a.png" not in _rows(ds)


@pytest.mark.timeout(180)
def test_a_scan_of_a_slow_endpoint_completes_with_exact_datapoints(faulty, client, namespace):
    storage = _stored(faulty)
    faulty.route_through_proxy()
    faulty.proxy.delay, faulty.proxy.chunk = SLOW_DELAY, SLOW_CHUNK
    ds = thresher.get_or_create_datasource(namespace, "objects", faulty.uri(), connection=client)
    ds.wait_until_ready(timeout=120, progress=False)
    listed = {entry.path: (entry.size, entry.etag) for entry in storage.list()}
    rows = _rows(ds)
    assert {path: row[:2] for path, row in rows.items()} == listed and sorted(listed) == sorted(FILES)
    assert rows["img/a.png"][2:] == (9, 4)  # the header was read, in ranges, through the slow endpoint
    assert faulty.proxy.connections > 0  # the scan did go through the proxy


@pytest.mark.timeout(180)
def test_a_scan_of_a_failing_endpoint_fails_naming_it_after_bounded_retries(faulty, client, namespace):
    ds = _scanned(faulty, client, namespace)
    before = _rows(ds)
    faulty.route_through_proxy()
    faulty.proxy.fail_with = 503
    reason = _rescan_fails(ds)
    assert named_endpoint(reason, faulty) and "503" in reason, reason
    listings = [line for line in faulty.proxy.failed_requests if "prefix=data" in line]
    assert len(listings) == ATTEMPTS, faulty.proxy.failed_requests
    assert _rows(ds) == before


# -- the flight service's file and blob reads ------------------------------------------------------------


def _file_reader(faulty: Faulty, client, namespace: str, data: bytes):
    """Reads the object holding ``data`` as a datasource file through the suite's flight service."""
    faulty.direct().write("big.bin", data)
    ds = indexed(client, namespace, faulty.uri(), ["big.bin"])
    ticket = fl.Ticket(
        flight_pb2.FlightTicket(file=flight_pb2.FileTicket(datasource_id=ds.id, path="big.bin")).SerializeToString()
    )

    def read(address: str) -> bytes:
        with fl.connect(f"grpc://{address}") as flight:
            return b"".join(flight.do_get(ticket, options=CALL).read_all().column("data").to_pylist())

    return lambda: read(client.flight_address)


def _blob_reader(faulty: Faulty, client, namespace: str, data: bytes):
    """Reads ``data`` as a blob through a flight service whose blob store is on the bucket."""
    digest = BlobStore(faulty.direct("blobs")).put(data)
    holder = indexed(client, namespace, faulty.uri(), ["holder.bin"], extra={"blob": [data]})  # who may read it
    ticket = fl.Ticket(
        flight_pb2.FlightTicket(blob=flight_pb2.BlobTicket(sha256=digest, datasource_id=holder.id)).SerializeToString()
    )

    def read() -> bytes:
        # Opened here, after the test routed storage through the proxy.
        channel = open_channel(client.metadata_address)
        server = ThresherFlightServer(
            "grpc://127.0.0.1:0", channel, "127.0.0.1", blobs=BlobStore(open_storage(faulty.uri("blobs")))
        )
        try:
            with fl.connect(f"grpc://127.0.0.1:{server.port}") as flight:
                return b"".join(flight.do_get(ticket, options=CALL).read_all().column("data").to_pylist())
        finally:
            server.shutdown()
            channel.close()

    return read


READERS = {"file": _file_reader, "blob": _blob_reader}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", READERS)
@pytest.mark.parametrize("fault", ["silent", "cut short", "disappears"])
def test_flight_reads_from_a_faulty_endpoint_fail_with_an_error_naming_it(faulty, client, namespace, kind, fault):
    read = READERS[kind](faulty, client, namespace, os.urandom(SIZE))
    faulty.route_through_proxy()
    inject(faulty.proxy, fault)
    try:
        with pytest.raises((fl.FlightError, pa.ArrowException)) as failure:
            read()
    finally:
        faulty.proxy.release()
    mapped = status.from_flight_error(failure.value)
    # Blamed on the storage endpoint, not on the flight service that passed the failure on.
    assert isinstance(mapped, StorageUnavailableError) and named_endpoint(str(mapped), faulty), mapped
    if fault == "silent":
        assert "timed out" in str(mapped) and "read timeout" in str(mapped), mapped
    if fault == "disappears":
        assert faulty.proxy.gone.is_set()  # the stream had started when the endpoint went away


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", READERS)
def test_flight_reads_from_a_slow_endpoint_return_the_exact_bytes(faulty, client, namespace, kind):
    data = os.urandom(SIZE)
    read = READERS[kind](faulty, client, namespace, data)
    faulty.route_through_proxy()
    faulty.proxy.delay = SLOW_DELAY  # ~50 pauses of 64 KiB: the whole read outlasts the read timeout
    assert read() == data
    assert faulty.proxy.connections > 0


# -- downloads straight from the bucket ------------------------------------------------------------------


def _enable_bucket_downloader(faulty: Faulty) -> None:
    """The default bucket client, made from the environment (so with the proxy and the short timeouts)."""
    if faulty.scheme == "s3":
        thresher.enable_s3_bucket_downloader()
    else:
        thresher.enable_gcs_bucket_downloader()


def _leftovers(folder) -> list[str]:
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", ["cut short", "disappears"])
def test_a_download_from_an_endpoint_that_drops_mid_stream_fails_and_leaves_no_file(
    faulty, client, namespace, tmp_path, fault
):
    faulty.direct().write("big.bin", os.urandom(SIZE))
    ds = indexed(client, namespace, faulty.uri(), ["big.bin"])
    faulty.route_through_proxy()
    _enable_bucket_downloader(faulty)
    inject(faulty.proxy, fault)
    with pytest.raises(StorageUnavailableError) as failure:
        ds.all().download_files(tmp_path / "out", keep_source_prefix=False, progress=False)
    assert named_endpoint(str(failure.value), faulty), failure.value
    assert _leftovers(tmp_path / "out") == []


@pytest.mark.timeout(120)
def test_a_download_from_a_silent_endpoint_times_out_and_leaves_no_file(faulty, client, namespace, tmp_path):
    faulty.direct().write("big.bin", os.urandom(SIZE))
    ds = indexed(client, namespace, faulty.uri(), ["big.bin"])
    faulty.route_through_proxy()
    _enable_bucket_downloader(faulty)
    faulty.proxy.hold()
    try:
        with pytest.raises(StorageUnavailableError) as failure:
            ds.all().download_files(tmp_path / "out", keep_source_prefix=False, progress=False)
    finally:
        faulty.proxy.release()
    message = str(failure.value)
    assert named_endpoint(message, faulty) and "timed out" in message and "read timeout" in message, message
    assert _leftovers(tmp_path / "out") == []

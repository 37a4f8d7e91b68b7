"""The flight service's reader of the metadata service's data port (see ``services/metadata/data_port.py``).

A query result read here is a Flight stream the flight service hands on whole (``RecordBatchStream``):
the batches never become Python objects, nor even pass through Python.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.flight as fl

from thresher.services.flight.flight_errors import relayed_flight_error
from thresher.services.flight.headers import Metadata
from thresher.v1 import common_pb2, metadata_service_pb2 as mpb


class DataPortClient:
    """Query results from the data port at ``address`` (``host:port``), read for the caller in ``metadata``."""

    def __init__(self, address: str, scheme: str = "grpc", root_certificates: bytes | None = None,
                 server_name: str | None = None) -> None:
        self.address = address
        # ``server_name``: the host name the port's certificate must carry when ``address`` does not say it.
        self._client = fl.FlightClient(f"{scheme}://{address}", tls_root_certs=root_certificates,
                                       override_hostname=server_name)

    def execute(self, query: common_pb2.Query, metadata: Metadata = ()) -> fl.FlightDataStream:
        """The result as a stream to hand on, its first message read first, so a bad query fails here."""
        ticket = fl.Ticket(mpb.ExecuteQueryRequest(query=query).SerializeToString())
        options = fl.FlightCallOptions(headers=[(name.encode(), value.encode()) for name, value in metadata])
        try:
            reader = self._client.do_get(ticket, options=options)
            reader.schema  # noqa: B018 - waits for the stream's first message: a failure to start surfaces here
        except (fl.FlightError, pa.ArrowException) as error:
            raise relayed_flight_error(error, self.address) from None
        return fl.RecordBatchStream(reader.to_reader())

    def close(self) -> None:
        self._client.close()

"""TLS on gRPC and Flight with certificates from configuration; the client verifies them."""

from __future__ import annotations

import os

import grpc
import pyarrow as pa
import pytest

from thresher import datasources
from thresher.core.errors import ThresherError
from thresher.services.auth import ServiceSecurity, TlsIdentity

from .conftest import security
from .stack import ServiceStack


@pytest.fixture(scope="module")
def tls_stack(certificate, tmp_path_factory):
    from thresher.services.metadata.server import open_store

    cert, key = certificate
    with open(cert, "rb") as c, open(key, "rb") as k:
        identity = TlsIdentity(c.read(), k.read())
    store = open_store(str(tmp_path_factory.mktemp("tls-home")))
    with ServiceStack([store], security(tls=identity, roots=identity.certificate_chain)) as stack:
        yield stack
    store.close()


def test_a_session_over_tls_with_the_configured_roots(tls_stack, certificate, tmp_path):
    (tmp_path / "a.txt").write_bytes(b"a")
    connection = tls_stack.connect(token="alice-token", root_certificates=certificate[0])
    ds = datasources.get_or_create(f"team/tls-{os.getpid()}", "files", tmp_path, connection=connection)
    ds.wait_until_ready(timeout=60, progress=False)
    ds.upload_metadata_from_dataframe(
        pa.table({"path": ["a.txt"], "n": [7]}).to_pandas(), path_column="path", create_missing=True
    )
    assert ds.all().dataframe[["path", "n"]].values.tolist() == [["a.txt", 7]]


def test_plaintext_and_unverified_clients_are_refused(tls_stack, monkeypatch):
    monkeypatch.delenv("THRESHER_TLS_ROOT_CERTS", raising=False)
    for options in ({}, {"tls": True}):  # no TLS; TLS that trusts only the system's roots
        connection = tls_stack.connect(token="alice-token", retry_timeout=0.2, **options)
        with pytest.raises(ThresherError):
            datasources.get_datasource(f"team/tls-{os.getpid()}", "files", connection=connection)


def test_tls_configuration_comes_from_the_environment(certificate):
    cert, key = certificate
    configured = ServiceSecurity.from_env(
        {
            "THRESHER_TLS_CERT": cert,
            "THRESHER_TLS_KEY": key,
            "THRESHER_TLS_ROOT_CERTS": cert,
            "THRESHER_TOKENS": "t=a:*:read",
        }
    )
    assert configured.tls is not None and configured.root_certificates == configured.tls.certificate_chain
    assert configured.flight_scheme == "grpc+tls"
    with pytest.raises(ValueError, match="both"):
        ServiceSecurity.from_env({"THRESHER_TLS_CERT": cert})


def test_a_multi_address_target_verifies_under_the_configured_server_name(certificate, tmp_path):
    """Two metadata replicas behind one ``ipv4:`` list, as compose's ``dns:///metadata`` resolves: the list
    names no host, so THRESHER_TLS_SERVER_NAME says which name their certificates must carry."""
    from thresher.services.metadata.server import create_server, open_store
    from thresher.v1 import metadata_service_pb2 as pb
    from thresher.v1 import metadata_service_pb2_grpc

    cert, key = certificate
    configured = ServiceSecurity.from_env(
        {
            "THRESHER_TLS_CERT": cert,
            "THRESHER_TLS_KEY": key,
            "THRESHER_TLS_ROOT_CERTS": cert,
            "THRESHER_TLS_SERVER_NAME": "localhost",
            "THRESHER_TOKENS": "t=a:*:read",
            "THRESHER_SERVICE_TOKEN": "t",
        }
    )
    assert configured.server_name == "localhost"
    store = open_store(str(tmp_path))
    servers = [create_server("127.0.0.1:0", store, configured) for _ in range(2)]
    target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for _, port in servers)
    try:
        channel = configured.channel(target)
        stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        for _ in range(4):  # round robin: both replicas answer, both certificates verified
            assert stub.ListNamespaces(pb.ListNamespacesRequest(), timeout=30).namespaces is not None
        channel.close()
        # A name the certificate does not carry fails verification, on both replicas.
        wrong = ServiceSecurity(
            tokens=configured.tokens,
            root_certificates=configured.root_certificates,
            service_token="t",
            server_name="metadata",
        )
        channel = wrong.channel(target)
        with pytest.raises(grpc.RpcError) as refused:
            metadata_service_pb2_grpc.MetadataServiceStub(channel).ListNamespaces(
                pb.ListNamespacesRequest(), timeout=30
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        channel.close()
        # Without a server name, a list is refused when the channel is made, naming the setting.
        unnamed = ServiceSecurity(tokens=configured.tokens, root_certificates=configured.root_certificates)
        with pytest.raises(ValueError, match="THRESHER_TLS_SERVER_NAME"):
            unnamed.channel(target)
    finally:
        for server, _ in servers:
            server.stop(grace=None).wait()
        store.close()

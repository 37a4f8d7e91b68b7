"""Fixtures for deployment tests: PostgreSQL-backed services, tokens, certificates."""

from __future__ import annotations

import subprocess

import pytest

from thresher.services.auth import ServiceSecurity, TlsIdentity, TokenTable

from .stack import ServiceStack

# Who may do what in the auth tests. The scanner's own token may write everywhere (it resumes scans).
TOKENS = (
    "admin-token=admin:*:write, alice-token=alice:team/*:write, reader-token=reader:team/*:read, "
    "bob-token=bob:other/*:write, carol-token=carol:third/*:write, scanner-token=scanner:*:write"
)


def security(tls: TlsIdentity | None = None, roots: bytes | None = None) -> ServiceSecurity:
    return ServiceSecurity(
        tokens=TokenTable.parse(TOKENS), tls=tls, service_token="scanner-token", root_certificates=roots
    )


def make_certificate(folder) -> tuple[str, str]:
    """A self-signed EC certificate for localhost and 127.0.0.1: (certificate path, key path)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[str, str]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def postgres_store_factory(postgres_url, tmp_path_factory):
    """Opens PostgreSQL stores (one per replica) over the session's database; closes them at the end."""
    from thresher.services.metadata.server import open_store

    blobs = str(tmp_path_factory.mktemp("shared-blobs"))
    opened = []

    def open_one():
        opened.append(open_store(blobs, postgres_url=postgres_url))
        return opened[-1]

    open_one.home = blobs  # the home of every store opened here: where their blobs live
    yield open_one
    for store in opened:
        store.close()


@pytest.fixture(scope="session")
def secured(tmp_path_factory):
    """The services with tokens (no TLS) over an embedded store."""
    from thresher.services.metadata.server import open_store

    store = open_store(str(tmp_path_factory.mktemp("secured-home")))
    with ServiceStack([store], security()) as stack:
        yield stack
    store.close()


@pytest.fixture(scope="session")
def replicas(postgres_store_factory):
    """Two metadata and two flight replicas over one PostgreSQL database, no auth."""
    with ServiceStack([postgres_store_factory(), postgres_store_factory()], flights=2) as stack:
        yield stack


@pytest.fixture(scope="session")
def local_services(postgres_store_factory):
    """Overrides the suite's services for tests collected here: the same services over PostgreSQL."""
    with ServiceStack([postgres_store_factory()]) as stack:
        yield _AsLocalServices(stack)


class _AsLocalServices:
    """A ServiceStack with LocalServices' connect() (which makes the default connection)."""

    def __init__(self, stack: ServiceStack) -> None:
        self.stack = stack
        self.metadata_address = stack.metadata_address
        self.flight_address = stack.flight_address
        self.scanner_address = stack.scanner_address

    def connect(self):
        import thresher

        return thresher.connect(self.metadata_address, self.flight_address, self.scanner_address)

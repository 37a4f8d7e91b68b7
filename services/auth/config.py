"""A service's security settings, from the environment: tokens, TLS, and the service's own token.

| variable | meaning |
|---|---|
| ``THRESHER_TOKENS`` / ``THRESHER_TOKENS_FILE`` | the tokens callers may present (see ``tokens``) |
| ``THRESHER_SERVICE_TOKEN`` | the token this service presents when it calls another on its own behalf |
| ``THRESHER_TLS_CERT``, ``THRESHER_TLS_KEY`` | PEM certificate chain and key: serve over TLS |
| ``THRESHER_TLS_ROOT_CERTS`` | PEM roots to verify the services this one calls (turns TLS on for them) |
| ``THRESHER_TLS_SERVER_NAME`` | the host name to verify in the certificates of the services this one calls, when |
|   | the address does not name it (a multi-address ``ipv4:A,B`` list of replicas, or a bare IP) |

A service refuses to listen on anything but a loopback address without tokens configured.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import grpc

from thresher.core import transport
from thresher.core.settings import Settings, env_name
from thresher.services.auth.flight_auth import flight_auth_options
from thresher.services.auth.grpc_auth import AuthInterceptor, Authorizer, ForwardingInterceptor
from thresher.services.auth.tokens import TokenTable

SERVICE_TOKEN_ENV = env_name("service_token")
TLS_CERT_ENV = env_name("tls_cert")
TLS_KEY_ENV = env_name("tls_key")
TLS_SERVER_NAME_ENV = env_name("tls_server_name")
# Targets that list several addresses: no single host name in them for TLS to verify.
_ADDRESS_LIST_SCHEMES = ("ipv4:", "ipv6:")


class InsecureBindError(RuntimeError):
    """A service was asked to listen beyond loopback with no tokens configured."""


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise ValueError(f"cannot read the {what} at {path!r}: {error}") from None


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only: ``localhost``, 127.0.0.0/8 or ::1."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_host(address: str) -> str:
    """The host of ``host:port``, ``[v6]:port`` or ``scheme://host:port``."""
    parts = urlsplit(address if "://" in address else f"//{address}")
    return parts.hostname or ""


@dataclass(frozen=True)
class TlsIdentity:
    """The PEM certificate chain and private key a service presents."""

    certificate_chain: bytes
    private_key: bytes


@dataclass(frozen=True)
class ServiceSecurity:
    """Everything a service needs to authenticate callers, serve TLS and call other services."""

    tokens: TokenTable = field(default_factory=TokenTable)
    tls: TlsIdentity | None = None
    service_token: str | None = None
    root_certificates: bytes | None = None
    # The host name the certificates of called services must carry, instead of the one in their address.
    server_name: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ServiceSecurity:
        """The security settings of ``environ`` (see ``from_settings``)."""
        return cls.from_settings(Settings.from_env(environ))

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceSecurity:
        """Tokens, TLS identity, roots, server name and service token as ``settings`` say; reads the files they name."""
        cert, key = settings.tls_cert, settings.tls_key
        if bool(cert) != bool(key):
            raise ValueError(f"TLS needs both {TLS_CERT_ENV} and {TLS_KEY_ENV}; only one is set")
        tls = TlsIdentity(_read(cert, "TLS certificate"), _read(key, "TLS key")) if cert else None
        roots = settings.tls_root_certs
        return cls(
            tokens=TokenTable.from_settings(settings),
            tls=tls,
            service_token=settings.service_token or None,
            root_certificates=_read(roots, "TLS root certificates") if roots else None,
            server_name=settings.tls_server_name or None,
        )

    def check_bind(self, address: str) -> None:
        """Refuses to serve beyond loopback without tokens."""
        host = bind_host(address)
        if not self.tokens and not is_loopback(host):
            raise InsecureBindError(
                f"refusing to listen on {address!r} without authentication: configure tokens in "
                f"$THRESHER_TOKENS or $THRESHER_TOKENS_FILE, or listen on a loopback address (127.0.0.1)"
            )

    def server_interceptors(self, authorizer: Authorizer | None = None) -> list[grpc.ServerInterceptor]:
        return [AuthInterceptor(self.tokens, authorizer)] if self.tokens else []

    def server_credentials(self) -> grpc.ServerCredentials | None:
        if self.tls is None:
            return None
        return grpc.ssl_server_credentials([(self.tls.private_key, self.tls.certificate_chain)])

    def flight_server_options(self) -> dict[str, Any]:
        """Keyword arguments for ``FlightServerBase``: the auth middleware and TLS certificates, as configured."""
        options = flight_auth_options(self.tokens)
        if self.tls is not None:
            options["tls_certificates"] = [(self.tls.certificate_chain, self.tls.private_key)]
        return options

    @property
    def flight_scheme(self) -> str:
        return "grpc+tls" if self.tls is not None else "grpc"

    def channel(self, address: str) -> grpc.Channel:
        """A channel to another service: TLS when roots are configured, carrying the caller's token
        (or this service's own token when it acts for no caller)."""
        channel = transport.open_channel(
            address, root_certificates=self.root_certificates, server_name=self.verified_name(address)
        )
        return grpc.intercept_channel(channel, ForwardingInterceptor(self.service_token))

    def verified_name(self, address: str) -> str | None:
        """The host name TLS verifies when calling ``address``: ``server_name`` if set, else the address's
        own (None). A list of addresses names no host, so without ``server_name`` it is refused here,
        naming the setting, rather than failing every call with a verification error."""
        if self.root_certificates is None:
            return None
        if self.server_name:
            return self.server_name
        if address.startswith(_ADDRESS_LIST_SCHEMES) and "," in address:
            raise ValueError(
                f"TLS to {address!r}: a list of addresses names no host to verify; set "
                f"{TLS_SERVER_NAME_ENV} to the host name the replicas' certificates carry"
            )
        return None

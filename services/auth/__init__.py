"""Authentication and TLS shared by the services: bearer tokens scoped to namespaces.

See docs/design.md, "Authentication and authorisation".
"""

from thresher.services.auth.config import InsecureBindError, ServiceSecurity, TlsIdentity, is_loopback
from thresher.services.auth.context import acting_as, current_identity, current_token
from thresher.services.auth.grpc_auth import AuthInterceptor, Authorizer, ForwardingInterceptor, PermissionDenied
from thresher.services.auth.tokens import Grant, Identity, TokenConfigError, TokenTable

__all__ = [
    "AuthInterceptor",
    "Authorizer",
    "ForwardingInterceptor",
    "Grant",
    "Identity",
    "InsecureBindError",
    "PermissionDenied",
    "ServiceSecurity",
    "TlsIdentity",
    "TokenConfigError",
    "TokenTable",
    "acting_as",
    "current_identity",
    "current_token",
    "is_loopback",
]

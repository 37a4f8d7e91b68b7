"""Authentication and TLS shared by the services: bearer tokens scoped to namespaces.

See docs/design.md, "Authentication and authorisation".
"""

from .config import InsecureBindError, ServiceSecurity, TlsIdentity, is_loopback
from .context import acting_as, current_identity, current_token
from .grpc_auth import Authorizer, AuthInterceptor, ForwardingInterceptor, PermissionDenied
from .tokens import Grant, Identity, TokenConfigError, TokenTable

__all__ = ["AuthInterceptor", "Authorizer", "ForwardingInterceptor", "Grant", "Identity", "InsecureBindError",
           "PermissionDenied", "ServiceSecurity", "TlsIdentity", "TokenConfigError", "TokenTable", "acting_as",
           "current_identity", "current_token", "is_loopback"]

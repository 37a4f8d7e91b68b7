"""An Authorizer for services whose requests name a datasource by id (the scanner): the datasource's
namespace is asked of the metadata service, as the caller, so a datasource the caller may not even
read is refused there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from thresher.services.auth.grpc_auth import PermissionDenied
from thresher.services.auth.tokens import Identity
from thresher.v1 import metadata_service_pb2 as mpb
from thresher.v1 import metadata_service_pb2_grpc

LOOKUP_TIMEOUT = 30.0


class DatasourceAuthorizer:
    """``modes`` maps a method's short name to True (write) or False (read) on ``request.datasource_id``'s
    namespace; other methods need a token that may write every namespace."""

    def __init__(self, metadata_channel: grpc.Channel, modes: Mapping[str, bool]) -> None:
        # The generated gRPC module has no type information; each call's response is annotated below.
        self._stub = metadata_service_pb2_grpc.MetadataServiceStub(metadata_channel)  # type: ignore[no-untyped-call]
        self._modes = dict(modes)

    def _namespace(self, datasource_id: int) -> str | None:
        try:
            response: mpb.GetDatasourceResponse = self._stub.GetDatasource(
                mpb.GetDatasourceRequest(id=datasource_id), timeout=LOOKUP_TIMEOUT
            )
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            if code == grpc.StatusCode.PERMISSION_DENIED:
                raise PermissionDenied(error.details()) from None
            return None  # not found or unreachable: the service itself answers that
        return response.datasource.namespace

    def check(self, method: str, request: Any, identity: Identity) -> None:
        if method not in self._modes:
            if not identity.may_everywhere(write=True):
                raise PermissionDenied(f"{method} is open only to tokens that may write every namespace")
            return
        write = self._modes[method]
        namespace = self._namespace(request.datasource_id) if request.datasource_id else None
        if namespace is not None and not identity.may(namespace, write):
            raise PermissionDenied(
                f"{identity.subject!r} may not {'write' if write else 'read'} namespace {namespace!r}"
            )

    def filter(self, method: str, response: Any, identity: Identity) -> Any:
        return response

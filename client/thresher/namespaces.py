"""Namespaces (``owner/name``), and binding one to a git repository for git sources.

Once ``team/pets`` is bound to a repository, ``datasources.get_or_create("team/pets", "imgs",
"data/images", "main")`` indexes ``data/images`` in that repository at ``main``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os

from thresher.connection import Connection, resolve
from thresher.core.errors import AlreadyExistsError
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as ms


@dataclasses.dataclass(frozen=True)
class Namespace:
    name: str
    repository: str
    """The git repository (local path or URL) its git sources read from; empty if none is bound."""
    created_at: dt.datetime | None

    @classmethod
    def from_proto(cls, proto: common_pb2.Namespace) -> Namespace:
        created = proto.created_at.ToDatetime(tzinfo=dt.UTC) if proto.HasField("created_at") else None
        return cls(proto.name, proto.repository_uri, created)


def create_namespace(
    name: str, repository: str | os.PathLike[str] | None = None, *, connection: Connection | None = None
) -> Namespace:
    """Creates namespace ``name``, bound to the git ``repository`` (a local path or a URL git can reach)
    if given. AlreadyExistsError if it exists, even with the same repository: the binding is fixed."""
    conn = resolve(connection)
    response = conn.call_metadata(
        "CreateNamespace", ms.CreateNamespaceRequest(name=name, repository_uri=_repository_uri(repository))
    )
    return Namespace.from_proto(response.namespace)


def get_namespace(name: str, *, connection: Connection | None = None) -> Namespace:
    """Namespace ``name``; NotFoundError if there is none."""
    conn = resolve(connection)
    return Namespace.from_proto(
        conn.call_metadata("GetNamespace", ms.GetNamespaceRequest(name=name), idempotent=True).namespace
    )


def list_namespaces(*, connection: Connection | None = None) -> list[Namespace]:
    """Every namespace the connection's token may read, by name."""
    conn = resolve(connection)
    found: list[Namespace] = []
    token = ""
    while True:
        response = conn.call_metadata(
            "ListNamespaces", ms.ListNamespacesRequest(page_size=500, page_token=token), idempotent=True
        )
        found.extend(Namespace.from_proto(proto) for proto in response.namespaces)
        token = response.next_page_token
        if not token:
            return found


def get_or_create_namespace(
    name: str, repository: str | os.PathLike[str] | None = None, *, connection: Connection | None = None
) -> Namespace:
    """Namespace ``name``, created (bound to ``repository``) if missing. AlreadyExistsError if it exists
    bound to another repository."""
    try:
        return create_namespace(name, repository, connection=connection)
    except AlreadyExistsError:
        existing = get_namespace(name, connection=connection)
        wanted = _repository_uri(repository)
        if wanted and existing.repository != wanted:
            raise AlreadyExistsError(
                f"namespace {name!r} exists bound to repository {existing.repository!r}, not {wanted!r}"
            ) from None
        return existing


def _repository_uri(repository: str | os.PathLike[str] | None) -> str:
    """URLs as given; local paths made absolute (the services may run in another folder)."""
    if repository is None:
        return ""
    text = os.fspath(repository)
    if "://" in text or ("@" in text and ":" in text.split("@", 1)[1]):  # a URL or scp-like user@host:path
        return text
    return os.path.abspath(os.path.expanduser(text))

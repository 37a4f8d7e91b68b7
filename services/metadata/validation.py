"""Rules for the names users choose: namespaces, datasources and datasets."""

from __future__ import annotations

import re

from thresher.services.metadata.domain_errors import InvalidArgument

_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_NAME_LENGTH = 256


def validate_namespace(name: str) -> None:
    if not _NAMESPACE.match(name or "") or len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"namespace {name!r} must look like 'owner/name' (letters, digits, '_', '.', '-')")


def validate_datasource_name(name: str, what: str = "datasource") -> None:
    if not name or not name.strip():
        raise InvalidArgument(f"a {what} needs a non-empty name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"{what} name is longer than {MAX_NAME_LENGTH} characters")
    if any(ch in name for ch in "\x00/") or not name.isprintable():
        raise InvalidArgument(f"{what} name {name!r} may not contain '/', NUL or control characters")


def validate_bag_uri(uri: str) -> None:
    """A bag dataset's location: a non-empty path or URI, one line."""
    if not uri or not uri.strip() or not uri.isprintable():
        raise InvalidArgument(f"a bag dataset needs a location (a path, s3:// or gs:// URI), got {uri!r}")

"""One storage interface for local folders, S3, GCS and git revisions, used by the client and the services.

``open_storage(uri)`` picks the backend by scheme:

==========================================================  ============================================
``/abs/dir``, ``file:///abs/dir``                            :class:`LocalStorage`
``s3://bucket/prefix``                                       :class:`S3Storage` (boto3)
``gs://bucket/prefix``                                       :class:`GCSStorage` (google-cloud-storage)
``git+<repository>@<revision>#subdirectory=<path>``           :class:`GitStorage` (the ``git`` command)
==========================================================  ============================================

S3 and GCS calls time out and retry as :mod:`thresher.core.storage.timeouts` says (``$THRESHER_STORAGE_*``).

A datasource names its storage by source URI, revision and its namespace's repository:
``for_datasource`` turns those into a storage. See :mod:`thresher.core.storage.base` for the interface.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

from thresher.core.storage.base import DEFAULT_CHUNK_SIZE, DEFAULT_PAGE_SIZE, Entry, Storage
from thresher.core.storage.git import GitRepository, GitStorage, git_uri, parse_git_uri
from thresher.core.storage.local import LocalStorage
from thresher.core.storage.storage_errors import (
    BlobNotFoundError,
    InvalidStorageUriError,
    ReadOnlyStorageError,
    StorageAccessDeniedError,
    StorageConfigError,
    StorageError,
    StorageNotFoundError,
    StorageUnavailableError,
    UnknownRevisionError,
    UnsafePathError,
)
from thresher.core.storage.timeouts import StorageTimeouts


def open_storage(
    uri: str | os.PathLike[str], *, client: Any = None, endpoint_url: str | None = None, refresh: bool = False
) -> Storage:
    """The storage rooted at ``uri`` (see the module docstring for the forms).

    ``client`` and ``endpoint_url`` override the S3/GCS client or endpoint; ``refresh`` fetches a
    remote git repository before resolving the revision.
    """
    text = os.fspath(uri)
    if text.startswith("git+"):
        repository, revision, path = parse_git_uri(text)
        return GitStorage(repository, revision or "HEAD", path, refresh=refresh)
    scheme, bucket, prefix = _split(text)
    if scheme == "file":
        return LocalStorage(prefix)
    if scheme == "s3":
        from thresher.core.storage.s3 import S3Storage

        return S3Storage(bucket, prefix, client=client, endpoint_url=endpoint_url)
    if scheme == "gs":
        from thresher.core.storage.gcs import GCSStorage

        return GCSStorage(bucket, prefix, client=client, endpoint_url=endpoint_url)
    raise InvalidStorageUriError(
        f"{text!r}: unsupported storage scheme {scheme}:// (use a local path, file://, s3://, gs:// or git+)"
    )


def for_datasource(source_uri: str, revision: str = "", repository_uri: str = "", *, refresh: bool = False) -> Storage:
    """The storage of a datasource: a revision makes ``source_uri`` a path in the namespace's repository
    ``repository_uri``; otherwise ``source_uri`` is a storage URI."""
    if in_repository(source_uri, revision):
        if not repository_uri:
            raise InvalidStorageUriError(
                f"source {source_uri!r} at revision {revision!r} is a path in the "
                "namespace's git repository, but the namespace has no repository bound"
            )
        return GitStorage(repository_uri, revision, source_uri, refresh=refresh)
    return open_storage(source_uri, refresh=refresh)


def in_repository(source_uri: str, revision: str) -> bool:
    """Whether a datasource's source is a path in its namespace's git repository (it has a revision
    and is not itself a URI)."""
    return bool(revision) and "://" not in source_uri and not source_uri.startswith("git+")


def split_object_uri(uri: str) -> tuple[Storage, str]:
    """(storage at the bucket or folder root, path) for the URI of one object, e.g. ``s3://b/a/x.bag``.

    Local paths get the file's folder as root; git URIs the repository root.
    """
    if uri.startswith("git+"):
        repository, revision, path = parse_git_uri(uri)
        return GitStorage(repository, revision or "HEAD"), path
    scheme, bucket, key = _split(uri)
    if scheme == "file":
        folder, name = os.path.split(os.path.abspath(key))
        return LocalStorage(folder), name
    return open_storage(f"{scheme}://{bucket}"), key


def _split(uri: str) -> tuple[str, str, str]:
    """(scheme, bucket, key or local path) of a storage URI; plain paths are ``file``."""
    if "://" not in uri:
        return "file", "", os.path.abspath(os.path.expanduser(uri))
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidStorageUriError(
                f"{uri!r}: file:// URIs name a local path (file:///abs/dir), not host {parts.netloc!r}"
            )
        return "file", "", unquote(parts.path) or "/"
    if scheme in ("s3", "gs") and not parts.netloc:
        raise InvalidStorageUriError(f"{uri!r} names no bucket ({scheme}://bucket/prefix)")
    return scheme, parts.netloc, uri.split("://", 1)[1][len(parts.netloc) :].lstrip("/")


__all__ = [
    "BlobNotFoundError",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_PAGE_SIZE",
    "Entry",
    "GitRepository",
    "GitStorage",
    "InvalidStorageUriError",
    "LocalStorage",
    "ReadOnlyStorageError",
    "Storage",
    "StorageAccessDeniedError",
    "StorageConfigError",
    "StorageError",
    "StorageNotFoundError",
    "StorageTimeouts",
    "StorageUnavailableError",
    "UnknownRevisionError",
    "UnsafePathError",
    "for_datasource",
    "git_uri",
    "in_repository",
    "open_storage",
    "parse_git_uri",
    "split_object_uri",
]

"""``s3://`` and ``gs://`` for the bag format: :mod:`thresher.core.storage` behind the bag's storage interface.

:mod:`thresher.core.bag.files` registers a :class:`CloudStorage` for each scheme the first time a path
uses it. What each operation costs, in requests to the object store:

- opening a file: one (its size, a HEAD); each ranged read: one, for exactly those bytes;
- a whole small file (``spec.json``, a ``.crc``): one; ``exists``: one;
- a listing (``listdir``, ``isdir``): one per page of objects; an upload: one (multipart when large).

A bucket's storage, and so its SDK client, is made once per process and then shared by every reader
and writer (and their threads). A missing object or bucket surfaces as ``FileNotFoundError``, which is
what the readers turn into :class:`~thresher.core.bag.bag_errors.IncompleteDatasetError`; other storage errors
(access denied, an endpoint that is down) pass through as the storage raised them, naming the object.
"""

from __future__ import annotations

import contextlib
import errno
import threading
from collections.abc import Callable, Iterator

from thresher.core.bag.bag_errors import CorruptBagError, UnsupportedLocationError
from thresher.core.storage import Storage as ObjectStore
from thresher.core.storage import StorageNotFoundError, open_storage

#: Makes the storage of one bucket from its URI (``s3://bucket``); tests wrap it to count requests.
Opener = Callable[[str], ObjectStore]


@contextlib.contextmanager
def _not_found_as_file_error(uri: str) -> Iterator[None]:
    """Re-raise the storage's not-found error as the ``FileNotFoundError`` the readers expect."""
    try:
        yield
    except StorageNotFoundError as error:
        raise FileNotFoundError(errno.ENOENT, str(error), uri) from error


class CloudFile:
    """One object read by ranges: every :meth:`read` is one request for exactly those bytes."""

    view = None  # nothing is held in memory: each read goes to the store

    def __init__(self, store: ObjectStore, key: str, uri: str):
        self._store = store
        self._key = key
        self.name = uri
        with _not_found_as_file_error(uri):
            self.size = store.stat(key).size

    def read(self, start: int, end: int) -> bytes:
        with _not_found_as_file_error(self.name):
            data = self._store.read(self._key, start, end)
        if len(data) != end - start:
            raise CorruptBagError(
                f"{self.name}: object ends before byte {end} (it was {self.size} bytes when opened: "
                "replaced or truncated since)"
            )
        return data

    def close(self) -> None:
        pass  # no handle is held: the bucket's client is shared


class CloudStorage:
    """The bag format's storage for paths ``<scheme>://bucket/key``, each bucket served by :mod:`thresher.core.storage`.

    Implements :class:`~thresher.core.bag.files.WritableStorage`. ``opener`` makes a bucket's storage from
    its URI (default :func:`thresher.core.storage.open_storage`: endpoints and credentials as configured there).
    """

    def __init__(self, scheme: str, opener: Opener = open_storage):
        self.scheme = scheme
        self._opener = opener
        self._buckets: dict[str, ObjectStore] = {}
        self._lock = threading.Lock()

    def locate(self, path: str) -> tuple[ObjectStore, str]:
        """The storage of ``path``'s bucket and the object key inside it."""
        head = f"{self.scheme}://"
        bucket, _, key = path.removeprefix(head).partition("/")
        if not path.startswith(head) or not bucket:
            raise UnsupportedLocationError(f"{path}: not a {head}bucket/key path")
        with self._lock:
            store = self._buckets.get(bucket)
            if store is None:
                store = self._buckets[bucket] = self._opener(head + bucket)
        return store, key.strip("/")

    def _folder(self, path: str) -> tuple[ObjectStore, str]:
        """The bucket's storage and the key prefix of everything inside the folder ``path``."""
        store, key = self.locate(path)
        return store, key + "/" if key else ""

    def open(self, path: str) -> CloudFile:
        store, key = self.locate(path)
        return CloudFile(store, key, path)

    def read_whole(self, path: str) -> bytes:
        store, key = self.locate(path)
        with _not_found_as_file_error(path):
            return store.read(key)

    def exists(self, path: str) -> bool:
        store, key = self.locate(path)
        return store.exists(key)

    def listdir(self, path: str) -> list[str]:
        store, prefix = self._folder(path)
        with _not_found_as_file_error(path):
            return list({entry.path[len(prefix) :].split("/", 1)[0] for entry in store.list(prefix)})

    def isdir(self, path: str) -> bool:
        store, prefix = self._folder(path)
        with _not_found_as_file_error(path):
            return next(store.list(prefix, page_size=1), None) is not None

    def remove_tree(self, path: str) -> None:
        store, prefix = self._folder(path)
        with _not_found_as_file_error(path):
            for entry in list(store.list(prefix)):  # listed whole first: deleting must not shift the pages
                store.delete(entry.path)

    def upload(self, local_file: str, path: str) -> None:
        store, key = self.locate(path)
        store.write_file(key, local_file)

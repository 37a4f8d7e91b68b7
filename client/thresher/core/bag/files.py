"""The one way the bag format reaches files: ranged reads through a small storage interface.

Every read of a bag, index, checksum or spec goes through a :class:`Storage` chosen by the path's
scheme. ``s3://`` and ``gs://`` are served by :mod:`thresher.core.bag.cloud` over :mod:`thresher.core.storage`,
registered on first use (so ``import thresher`` imports no cloud SDK); other schemes plug in with
:func:`register_storage`. Local files are memory-mapped: no shared file offset, so one open file
serves many threads and survives ``fork``. Writers always write local files (see
:mod:`thresher.core.bag.staging`); a :class:`WritableStorage` is what they need to publish them.
"""

from __future__ import annotations

import mmap
import os
import shutil
import threading
from typing import Protocol, runtime_checkable

from thresher.core.bag.bag_errors import CorruptBagError, UnsupportedLocationError


class RangedFile(Protocol):
    """An open file that serves byte ranges; the unit one cloud request maps onto."""

    name: str
    size: int

    @property
    def view(self) -> bytes | mmap.mmap | None:
        """The whole file as a sliceable buffer when it lives in memory (mapped or cached), else None;
        readers slice it directly once they have checked their offsets against ``size``."""

    def read(self, start: int, end: int) -> bytes:
        """Return bytes ``[start, end)``; raise :class:`CorruptBagError` if the file is shorter."""

    def close(self) -> None:
        """Release the file."""


class Storage(Protocol):
    """The file operations the bag format needs from a place that holds datasets."""

    def open(self, path: str) -> RangedFile:
        """Open a file for ranged reads; ``FileNotFoundError`` if it does not exist."""

    def read_whole(self, path: str) -> bytes:
        """The whole content of a small file (``spec.json``, a ``.crc``) in one read; ``FileNotFoundError``."""

    def exists(self, path: str) -> bool:
        """Whether a file (or, for local paths, a folder) exists."""

    def listdir(self, path: str) -> list[str]:
        """Names of the entries directly inside a folder (prefix), unsorted."""


@runtime_checkable
class WritableStorage(Storage, Protocol):
    """What writers need besides reading: finding, clearing and filling a dataset's folder."""

    def isdir(self, path: str) -> bool:
        """Whether the folder (prefix) ``path`` holds anything."""

    def remove_tree(self, path: str) -> None:
        """Remove the folder ``path`` and everything in it."""

    def upload(self, local_file: str, path: str) -> None:
        """Store the local file ``local_file`` as ``path``, whole: readers see all of it or nothing."""


class LocalFile:
    """A local file, memory-mapped for reads (a slice costs far less than a ``pread`` call).

    Dataset files are never changed in place (writers rename finished files into place), so the
    mapping stays valid. Where no mapping can be had (a process holds at most
    ``vm.max_map_count`` of them), the file is read with ``os.pread`` instead.
    """

    def __init__(self, path: str):
        self.name = path
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self.size = os.fstat(self._fd).st_size
        self.view: mmap.mmap | bytes | None = b""
        if self.size:
            try:
                self.view = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
            except OSError:
                self.view = None
                return
        os.close(self._fd)  # the mapping alone keeps the file
        self._fd = -1

    def read(self, start: int, end: int) -> bytes:
        if self.view is not None:
            data = self.view[start:end]
        else:
            data = os.pread(self._fd, end - start, start)
        if len(data) != end - start:
            if self.view is None and len(data) and start + len(data) < self.size:
                return data + self.read(start + len(data), end)  # pread returns at most ~2 GiB
            raise CorruptBagError(f"{self.name}: file ends at byte {self.size}, but bytes up to {end} were expected")
        return data

    def close(self) -> None:
        if self.view is not None and not isinstance(self.view, bytes):
            try:
                self.view.close()
            except BufferError:
                pass  # still lent out (a view of a block read): unmapped when the last view is released
        self.view = b""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        # A reader dropped without close() (e.g. by a cache) must not keep a descriptor open.
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)
            self._fd = -1


class MemoryFile:
    """Bytes held in memory, served like a file (``cache_data`` and in-memory bags)."""

    def __init__(self, data: bytes, name: str = "<memory>"):
        self.name = name
        self.view = bytes(data)
        self.size = len(self.view)

    def read(self, start: int, end: int) -> bytes:
        if end > self.size:
            raise CorruptBagError(f"{self.name}: file ends at byte {self.size}, but bytes up to {end} were expected")
        return self.view[start:end]

    def close(self) -> None:
        pass


class LocalStorage:
    """The local file system."""

    def open(self, path: str) -> RangedFile:
        return LocalFile(path)

    def read_whole(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path)

    def remove_tree(self, path: str) -> None:
        shutil.rmtree(path)

    def upload(self, local_file: str, path: str) -> None:
        shutil.copyfile(local_file, path)


_local = LocalStorage()
_storages: dict[str, Storage] = {}
_lock = threading.Lock()
#: Schemes :mod:`thresher.core.storage` serves, registered the first time a path uses them.
CLOUD_SCHEMES = ("s3", "gs")


def register_storage(scheme: str, storage: Storage) -> None:
    """Serve paths ``<scheme>://...`` with ``storage`` (the hook for ``thresher.core.storage``)."""
    with _lock:
        _storages[scheme] = storage


def scheme_of(path: str) -> str | None:
    """The URI scheme of ``path`` (``"s3"``, ``"gs"``), or None for a local path."""
    head, sep, _ = path.partition("://")
    return head if sep and head.isalnum() else None


def storage_for(path: str) -> Storage:
    """The storage that serves ``path``; raises :class:`UnsupportedLocationError` if none does."""
    scheme = scheme_of(path)
    if scheme is None or scheme == "file":
        return _local
    with _lock:
        storage = _storages.get(scheme)
    if storage is None and scheme in CLOUD_SCHEMES:
        from thresher.core.bag.cloud import CloudStorage

        with _lock:
            storage = _storages.setdefault(scheme, CloudStorage(scheme))
    if storage is None:
        raise UnsupportedLocationError(f"{path}: no storage is registered for {scheme}:// paths")
    return storage


def writable_storage_for(path: str) -> WritableStorage:
    """The storage a writer publishes ``path`` to; :class:`UnsupportedLocationError` if it cannot write."""
    storage = storage_for(path)
    if not isinstance(storage, WritableStorage):
        raise UnsupportedLocationError(f"{path}: the storage for {scheme_of(path)}:// paths does not take writes")
    return storage


def is_remote(path: str) -> bool:
    """Whether ``path`` (normalised) lives in a registered storage rather than the local file system."""
    return scheme_of(path) not in (None, "file")


def normpath(path: str | os.PathLike[str]) -> str:
    """A path as a string; ``file://`` URIs become plain local paths."""
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return path[len("file://") :] if path.startswith("file://") else path


def join(base: str, name: str) -> str:
    """``base/name`` for local paths and URIs alike."""
    if scheme_of(base) is None:
        return os.path.join(base, name)
    return base.rstrip("/") + "/" + name


def split(path: str) -> tuple[str, str]:
    """(folder, name) of ``path``, for local paths and URIs alike."""
    if scheme_of(path) is None:
        return os.path.split(path)
    folder, _, name = path.rpartition("/")
    return folder, name


def open_ranged(path: str) -> RangedFile:
    """Open ``path`` for ranged reads through its storage."""
    return storage_for(path).open(path)


def read_whole(path: str) -> bytes:
    """The whole content of a small file such as ``spec.json``: one read."""
    return storage_for(path).read_whole(path)


def exists(path: str) -> bool:
    """Whether ``path`` exists in its storage."""
    return storage_for(path).exists(path)


def listdir(path: str) -> list[str]:
    """Entry names directly inside ``path``."""
    return storage_for(path).listdir(path)


def isdir(path: str) -> bool:
    """Whether the folder ``path`` exists (holds anything, for object stores)."""
    return writable_storage_for(path).isdir(path)


def remove_tree(path: str) -> None:
    """Remove the folder ``path`` with everything in it."""
    writable_storage_for(path).remove_tree(path)

"""A local folder as storage: ``os.scandir`` listing, ``pread`` ranges, writes by temporary name and rename.

Symlinks are followed only to files that resolve inside the root, so no path reads outside it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import tempfile
from collections.abc import Callable, Iterator
from typing import BinaryIO

from thresher.core.storage.base import DEFAULT_PAGE_SIZE, Entry, Storage, check_range, clean_relative
from thresher.core.storage.storage_errors import (
    InvalidStorageUriError,
    StorageAccessDeniedError,
    StorageError,
    StorageNotFoundError,
)


class LocalStorage(Storage):
    """The files under the folder ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.uri = pathlib.Path(self.root).as_uri()
        self._real_root = os.path.realpath(self.root)

    def local_path(self, path: str) -> str:
        """The file system path of ``path``; InvalidStorageUriError if it resolves outside the root."""
        relative = clean_relative(path)
        full = os.path.join(self.root, relative) if relative else self.root
        real = os.path.realpath(full)
        if real != self._real_root and not real.startswith(self._real_root.rstrip("/") + "/"):
            raise InvalidStorageUriError(f"{path!r} resolves to {real}, outside {self.root}")
        return full

    def pages(self, prefix: str = "", page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[list[Entry]]:
        if not os.path.isdir(self.root):
            raise StorageNotFoundError(f"folder {self.root} does not exist")
        # Start in the deepest folder the prefix names, then filter by the whole prefix.
        folder = prefix.rpartition("/")[0]
        stack = [clean_relative(folder)]
        page: list[Entry] = []
        while stack:
            relative = stack.pop()
            for entry in self._folder(relative, prefix, stack):
                page.append(entry)
                if len(page) >= page_size:
                    yield page
                    page = []
        if page:
            yield page

    def _folder(self, relative: str, prefix: str, stack: list[str]) -> Iterator[Entry]:
        base = relative + "/" if relative else ""
        try:
            with os.scandir(os.path.join(self.root, relative)) as listing:
                items = list(listing)
        except FileNotFoundError:
            return  # a prefix naming no folder lists nothing, as on an object store
        except PermissionError as error:
            raise StorageAccessDeniedError(f"permission denied reading folder {error.filename}") from None
        for item in items:
            path = base + item.name
            if item.is_dir(follow_symlinks=False):
                if path.startswith(prefix) or prefix.startswith(path + "/"):
                    stack.append(path)
            elif path.startswith(prefix) and (item.is_file(follow_symlinks=False) or self._inside(item.path)):
                try:
                    info = item.stat()
                except OSError:
                    continue  # vanished, or a broken link
                if os.path.isfile(item.path):
                    yield Entry(path, info.st_size, info.st_mtime_ns)

    def _inside(self, path: str) -> bool:
        real = os.path.realpath(path)
        return real.startswith(self._real_root.rstrip("/") + "/")

    def stat(self, path: str) -> Entry:
        full = self.local_path(path)
        try:
            info = os.stat(full)
        except OSError as error:
            raise _error(error, full) from None
        if not os.path.isfile(full):
            raise StorageNotFoundError(f"{full} is not a file")
        return Entry(clean_relative(path), info.st_size, info.st_mtime_ns)

    def read(self, path: str, start: int = 0, end: int | None = None) -> bytes:
        check_range(start, end)
        full = self.local_path(path)
        try:
            with open(full, "rb") as handle:
                if start:
                    handle.seek(start)
                return handle.read() if end is None else handle.read(end - start)
        except OSError as error:
            raise _error(error, full) from None

    def write(self, path: str, data: bytes) -> None:
        full = self.local_path(path)
        self._replace(full, lambda handle: handle.write(data))

    def write_file(self, path: str, local_path: str | os.PathLike[str]) -> None:
        full = self.local_path(path)

        def copy(handle: BinaryIO) -> None:
            with open(local_path, "rb") as source:
                while chunk := source.read(8 * 1024 * 1024):
                    handle.write(chunk)

        self._replace(full, copy)

    def _replace(self, full: str, fill: Callable[[BinaryIO], object]) -> None:
        """Writes ``full`` through a temporary file in its folder, synced, then renamed over it."""
        try:
            os.makedirs(os.path.dirname(full), exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=os.path.dirname(full), prefix=".tmp-")
        except OSError as error:
            raise _error(error, full) from None
        try:
            with os.fdopen(fd, "wb") as handle:
                fill(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, full)
        except BaseException as error:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            if isinstance(error, OSError):
                raise _error(error, error.filename or full) from None  # the source file, when that failed
            raise

    def delete(self, path: str) -> None:
        full = self.local_path(path)
        try:
            os.unlink(full)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise _error(error, full) from None

    def url(self, path: str, expires: int = 3600) -> str:
        return pathlib.Path(self.local_path(path)).as_uri()


def _error(error: OSError, path: str) -> StorageError:
    if error.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
        return StorageNotFoundError(
            f"file {path} does not exist" if error.errno != errno.EISDIR else f"{path} is a folder, not a file"
        )
    if error.errno in (errno.EACCES, errno.EPERM):
        return StorageAccessDeniedError(f"permission denied for {path}")
    return StorageError(f"{path}: {error.strerror or error}")

"""Reading and writing annotation files on a local path or a storage URI (s3://, gs://, file://),
through Thresher's storage connectors (so their endpoints and credentials apply)."""

from __future__ import annotations

import os
import posixpath

from thresher.core.storage import open_storage


def _split(location: str | os.PathLike[str]) -> tuple[str, str]:
    """(the folder's URI or path, the file's name in it) of a location."""
    text = os.fspath(location).rstrip("/")
    if "://" in text:
        head, _, name = text.rpartition("/")
        return head, name
    text = os.path.abspath(text)
    return os.path.dirname(text), os.path.basename(text)


class Location:
    """A file or folder to read annotations from; paths below are relative to the folder."""

    def __init__(self, location: str | os.PathLike[str]) -> None:
        self.text = os.fspath(location)
        folder, name = _split(location)
        self._storage = open_storage(folder)
        self._name = name
        # A folder is a name with something under it (a local one: a directory); anything else is one file.
        if "://" in self.text:
            self._dir = next(iter(self._storage.list(name + "/")), None) is not None
        else:
            self._dir = os.path.isdir(self.text)
        self.root = name

    def is_dir(self) -> bool:
        return self._dir

    def join(self, *parts: str) -> str:
        return posixpath.join(self.root, *[p.strip("/") for p in parts if p])

    def exists(self, path: str) -> bool:
        return (path == self.root and self._dir) or self._storage.exists(path)

    def read_bytes(self, path: str | None = None) -> bytes:
        return self._storage.read(path or self.root)

    def read_text(self, path: str | None = None) -> str:
        return self.read_bytes(path).decode("utf-8-sig")

    def files(self, under: str | None = None, suffix: str = "") -> list[str]:
        """Every file below ``under`` (the folder by default) ending in ``suffix``, sorted."""
        prefix = (under or self.root).rstrip("/") + "/"
        return sorted(entry.path for entry in self._storage.list(prefix) if entry.path.endswith(suffix))

    def relative(self, path: str) -> str:
        return path[len(self.root) + 1 :] if path.startswith(self.root + "/") else path


def write_text(target: str | os.PathLike[str], relative: str, text: str) -> str:
    """Writes ``text`` at ``target``/``relative`` (``target`` itself when ``relative`` is empty)."""
    if relative:
        storage, path = (
            open_storage(os.fspath(target) if "://" in os.fspath(target) else os.path.abspath(target)),
            relative,
        )
    else:
        folder, path = _split(target)
        storage = open_storage(folder)
    storage.write(path, text.encode("utf-8"))
    base = os.fspath(target)
    return posixpath.join(base, relative) if relative else base

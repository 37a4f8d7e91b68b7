"""Reading and writing annotation files on a local path or a storage URI (s3://, gs://, file://)."""

from __future__ import annotations

import os
import pathlib

import pyarrow.fs as pafs


def _filesystem(location: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    text = os.fspath(location)
    if "://" in text:
        return pafs.FileSystem.from_uri(text)
    return pafs.LocalFileSystem(), str(pathlib.Path(text).resolve())


class Location:
    """A file or folder to read annotations from."""

    def __init__(self, location: str | os.PathLike[str]) -> None:
        self.text = os.fspath(location)
        self.fs, self.root = _filesystem(location)

    def is_dir(self) -> bool:
        return self.fs.get_file_info(self.root).type == pafs.FileType.Directory

    def join(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *[p.strip("/") for p in parts if p]])

    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def read_bytes(self, path: str | None = None) -> bytes:
        with self.fs.open_input_stream(path or self.root) as stream:
            return stream.read()

    def read_text(self, path: str | None = None) -> str:
        return self.read_bytes(path).decode("utf-8-sig")

    def files(self, under: str | None = None, suffix: str = "") -> list[str]:
        """Every file below ``under`` (the root by default) ending in ``suffix``, sorted."""
        selector = pafs.FileSelector(under or self.root, recursive=True, allow_not_found=True)
        return sorted(info.path for info in self.fs.get_file_info(selector)
                      if info.type == pafs.FileType.File and info.path.endswith(suffix))

    def relative(self, path: str) -> str:
        return path[len(self.root.rstrip("/")) + 1:] if path.startswith(self.root.rstrip("/") + "/") else path


def write_text(target: str | os.PathLike[str], relative: str, text: str) -> str:
    """Writes ``text`` at ``target``/``relative`` (folders made as needed); returns the path written."""
    fs, root = _filesystem(target)
    path = "/".join([root.rstrip("/"), relative]) if relative else root
    parent = path.rsplit("/", 1)[0]
    fs.create_dir(parent, recursive=True)
    with fs.open_output_stream(path) as stream:
        stream.write(text.encode("utf-8"))
    return path

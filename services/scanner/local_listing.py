"""Lists a local folder with ``os.scandir``: one stat per file, none per folder, pages of about PAGE_SIZE files.

Symlinks are followed only while they lead to somewhere inside the root, and never round a loop.
What is passed over (special files, links out of the root, broken links, files that vanish while the
walk runs) is counted and logged, never dropped silently.
"""

from __future__ import annotations

import collections
import logging
import os
import stat
import threading
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from thresher.services.scanner.scan_sources import Page, ScanCancelled, SourceError

log = logging.getLogger(__name__)

# How many passed-over paths are named in the log; the rest are only counted.
_NAMED_SKIPS = 10
# Files per page, about: a page ends with the folder that fills it.
PAGE_SIZE = 4096


class _Folder(NamedTuple):
    """A folder waiting to be read."""

    path: str
    """Where to read it."""
    prefix: str
    """The relative POSIX path of its entries ("" or ending in "/")."""
    real: str
    """Its resolved location."""
    links: tuple[str, ...]
    """The resolved folders holding the symlinks followed to reach it, to recognise a link back up."""


class LocalSource:
    """The files under a local folder; what changed is decided by size and mtime."""

    tagged = False
    remote = False

    def __init__(self, root: str) -> None:
        self.root = root
        self.skipped: collections.Counter[str] = collections.Counter()

    def open(self, path: str) -> BinaryIO:
        return open(os.path.join(self.root, path), "rb")

    def close(self) -> None:
        """Nothing to release: each folder and file is closed as soon as it is read."""

    def pages(self, cancel: threading.Event | None = None) -> Iterator[Page]:
        self._check_root()
        real_root = os.path.realpath(self.root)
        self.skipped.clear()
        stack = [_Folder(self.root, "", real_root, ())]
        page = Page()
        while stack:
            if cancel is not None and cancel.is_set():
                raise ScanCancelled()
            folder = stack.pop()
            self._read(folder, page, stack, real_root)
            if len(page) >= PAGE_SIZE or not stack:
                yield page
                page = Page()
        if self.skipped:
            log.warning(
                "%s: passed over %s",
                self.root,
                ", ".join(f"{count} {why}" for why, count in sorted(self.skipped.items())),
            )

    def _read(self, folder: _Folder, page: Page, stack: list[_Folder], real_root: str) -> None:
        """Adds the files of one folder to ``page`` and its subfolders to ``stack``."""
        prefix = folder.prefix
        paths, sizes, mtimes = page.paths, page.sizes, page.mtimes_ns
        try:
            with os.scandir(folder.path) as listing:
                for item in listing:
                    # is_file/is_dir with follow_symlinks=False use the type from the directory
                    # listing itself and cost no system call.
                    if item.is_file(follow_symlinks=False):
                        try:
                            info = item.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            self._skip("vanished", prefix + item.name)
                            continue
                        paths.append(prefix + item.name)
                        sizes.append(info.st_size)
                        mtimes.append(info.st_mtime_ns)
                    elif item.is_dir(follow_symlinks=False):
                        stack.append(
                            _Folder(
                                item.path, prefix + item.name + "/", os.path.join(folder.real, item.name), folder.links
                            )
                        )
                    elif item.is_symlink():
                        self._follow(item, folder, real_root, stack, page)
                    else:
                        self._skip("special file", prefix + item.name)
        except FileNotFoundError:
            if not prefix:
                raise SourceError(f"folder {self.root} disappeared during the scan") from None
            self._skip("vanished", prefix)
        except NotADirectoryError:
            self._skip("vanished", prefix)
        except PermissionError as error:
            raise SourceError(f"permission denied reading folder {folder.path}") from error
        except OSError as error:
            raise SourceError(f"cannot read folder {folder.path}: {error.strerror or error}") from error

    def _check_root(self) -> None:
        try:
            info = os.stat(self.root)
        except FileNotFoundError:
            raise SourceError(f"folder {self.root} does not exist") from None
        except PermissionError:
            raise SourceError(f"permission denied reading {self.root}") from None
        except OSError as error:
            raise SourceError(f"cannot read {self.root}: {error.strerror or error}") from error
        if not stat.S_ISDIR(info.st_mode):
            raise SourceError(f"{self.root} is not a folder")
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise SourceError(f"permission denied reading folder {self.root}")

    def _follow(
        self, item: os.DirEntry[str], folder: _Folder, real_root: str, stack: list[_Folder], page: Page
    ) -> None:
        """Adds a symlinked file to ``page`` or pushes a symlinked folder, if the link stays inside the root."""
        relative = folder.prefix + item.name
        target = os.path.realpath(item.path)
        if not _within(target, real_root):
            self._skip("symlinks leading out of the root", relative)
            return
        try:
            info = os.stat(target)
        except OSError:
            self._skip("broken symlinks", relative)
            return
        if stat.S_ISREG(info.st_mode):
            page.paths.append(relative)
            page.sizes.append(info.st_size)
            page.mtimes_ns.append(info.st_mtime_ns)
        elif not stat.S_ISDIR(info.st_mode):
            self._skip("special file", relative)
        elif any(_within(place, target) for place in (folder.real, *folder.links)):
            # A link to a folder that contains the one being read (directly, or above an earlier link).
            self._skip("symlink loops", relative)
        else:
            stack.append(_Folder(item.path, relative + "/", target, folder.links + (folder.real,)))

    def _skip(self, why: str, path: str) -> None:
        self.skipped[why] += 1
        if self.skipped[why] <= _NAMED_SKIPS:
            log.warning("%s: passing over %s (%s)", self.root, path, why)


def _within(path: str, folder: str) -> bool:
    """True when ``path`` is ``folder`` or lies below it (both resolved)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")

"""Writing downloaded bytes to local files: where they go, safely, and never seen half-written."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import tempfile
from collections.abc import Iterable

from thresher.core.settings import Settings, env_name
from thresher.core.storage.storage_errors import UnsafePathError

DOWNLOAD_DIR_ENV = env_name("download_dir")
TEMPORARY_PREFIX = ".thresher-partial-"
# `C:`, `c:\\x`, `C:/x`: absolute (or drive-relative) on Windows wherever the file is written from.
_DRIVE = re.compile(r"^[A-Za-z]:")


def download_root() -> pathlib.Path:
    """Where downloads and the blob cache live: ``$THRESHER_DOWNLOAD_DIR``, default ``~/thresher``."""
    return pathlib.Path(Settings.read("download_dir"))


def safe_join(folder: str | os.PathLike[str], relative: str) -> pathlib.Path:
    """``folder/relative``, or UnsafePathError naming ``relative`` when it would land outside ``folder``:
    an absolute path, a ``..`` component, or a symlink (already in ``folder``) that leads out of it."""
    if not relative or relative.startswith(("/", "\\")) or "\0" in relative or os.path.isabs(relative):
        raise UnsafePathError(
            f"datapoint path {relative!r} is absolute or empty: it cannot be written inside {os.fspath(folder)}"
        )
    if _DRIVE.match(relative):
        raise UnsafePathError(
            f"datapoint path {relative!r} starts with a drive letter: it cannot be written inside {os.fspath(folder)}"
        )
    parts = [part for part in relative.replace("\\", "/").split("/") if part not in ("", ".")]
    if ".." in parts or not parts:
        raise UnsafePathError(f"datapoint path {relative!r} climbs out of {os.fspath(folder)} with '..'")
    root = os.path.realpath(folder)
    target = os.path.join(root, *parts)
    # realpath resolves any symlink on the way (to a folder or to the final file) that is already there.
    resolved = os.path.realpath(target)
    if not resolved.startswith(root.rstrip(os.sep) + os.sep):
        raise UnsafePathError(
            f"datapoint path {relative!r} leads through a symlink to {resolved}, outside {os.fspath(folder)}"
        )
    return pathlib.Path(target)


def write_atomically(target: str | os.PathLike[str], chunks: Iterable[bytes | memoryview]) -> int:
    """Writes ``chunks`` to ``target`` through a temporary file in the same folder, then renames it into
    place: readers see the old file or the whole new one. On any failure the temporary file is removed
    and ``target`` is untouched. Returns the bytes written."""
    target = os.fspath(target)
    folder, name = os.path.split(target)
    os.makedirs(folder or ".", exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder or ".", prefix=TEMPORARY_PREFIX + name[:100] + ".")
    written = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                written += len(chunk)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return written

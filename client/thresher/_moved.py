"""Old import paths of moved modules, kept for one release as deprecated aliases of the new ones.

``MOVED`` maps each old module name to its new one. ``install()`` (run by ``thresher/__init__.py``) puts a
finder first on ``sys.meta_path`` that answers an old name with the new module itself: ``import
thresher.types`` gives the very module object ``thresher.core.types`` (so classes, ``isinstance`` checks and
monkeypatches are shared) and emits one DeprecationWarning naming the new path. A module under a moved
package (``thresher.storage.s3``) follows its package. No shim files: this table is the whole of it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any

_CORE_MODULES = ["arrow_io", "errors", "labels", "status", "transport", "types", "vectors"]
_STORAGE_MODULES = ["base", "blobs", "gcs", "git", "local", "s3", "timeouts"]
_BAG_MODULES = [
    "arrays",
    "bag",
    "checksums",
    "cloud",
    "files",
    "formats",
    "reader",
    "refs",
    "sharded",
    "spec",
    "staging",
    "tables",
    "video",
    "writer",
    "writing",
]

#: Old module name -> new module name.
MOVED: dict[str, str] = {
    **{f"thresher.{name}": f"thresher.core.{name}" for name in _CORE_MODULES},
    "thresher.storage": "thresher.core.storage",
    **{f"thresher.storage.{name}": f"thresher.core.storage.{name}" for name in _STORAGE_MODULES},
    "thresher.storage.errors": "thresher.core.storage.storage_errors",
    # thresher.bag itself stays (the user-facing package); its format modules moved.
    **{f"thresher.bag.{name}": f"thresher.core.bag.{name}" for name in _BAG_MODULES},
    "thresher.bag.errors": "thresher.core.bag.bag_errors",
    # ScanStatus moved to thresher.core.scan_status; the client's half (waiting with a progress bar) was renamed
    # and still offers ScanStatus and the state names the old module had.
    "thresher.scan": "thresher.scan_progress",
    # Renamed so that no two modules share a name (see "Package layout" in docs/design.md).
    "thresher.local": "thresher.local_services",
    "thresher.gallery.app": "thresher.gallery.routes",
    "thresher.ml.files": "thresher.ml.file_cache",
    "thresher.label_formats.files": "thresher.label_formats.annotation_files",
    "thresher.loader.errors": "thresher.loader.loader_errors",
    "thresher.ray_engine.export": "thresher.ray_engine.export_tasks",
    "thresher.ray_engine.upload": "thresher.ray_engine.upload_tasks",
}
_MOVED_PACKAGES = {"thresher.storage"}


def new_name(old: str) -> str | None:
    """The new name of module ``old``, or None when it did not move."""
    if old in MOVED:
        return MOVED[old]
    package, _, leaf = old.rpartition(".")
    # A module below a moved package moved with it, even one the table does not list: never a second copy.
    if package in _MOVED_PACKAGES:
        target = f"{MOVED[package]}.{leaf}"
        return target if importlib.util.find_spec(target) is not None else None
    return None


def _stacklevel() -> int:
    """The stacklevel of the first frame outside the import machinery and this module (the importer)."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        name = frame.f_code.co_filename
        if "importlib" in name and "_bootstrap" in name:
            pass  # warnings.warn skips the import system's own frames itself: not counted
        elif (
            name == __file__
            or name == importlib.__file__
            or (frame.f_code.co_name == "__getattr__" and frame.f_globals.get("__name__", "").startswith("thresher"))
        ):
            level += 1  # this module, importlib.import_module, a package's __getattr__ reaching an old name
        else:
            break
        frame = frame.f_back  # type: ignore[assignment]
    return level


class _AliasLoader(importlib.abc.Loader):
    """Loads an old name as the new module itself."""

    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new
        self._real_spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.new)
        self._real_spec = module.__spec__
        warnings.warn(
            f"{self.old} is deprecated: it moved to {self.new}; import {self.new} instead "
            f"(the old name will be removed in the next release)",
            DeprecationWarning,
            stacklevel=_stacklevel(),
        )
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system set module.__spec__ to the alias's spec; the module keeps its own.
        module.__spec__ = self._real_spec


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Finds old names of moved modules (first on sys.meta_path, so before the real package's path)."""

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("thresher."):
            return None
        new = new_name(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(fullname, new))


_FINDER = _AliasFinder()


def install() -> None:
    """Put the alias finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _FINDER)


def moved_attribute(package: str, name: str) -> ModuleType:
    """A package's ``__getattr__`` for the moved submodule ``name`` (``thresher.types`` after ``import thresher``).

    Raises AttributeError, as a missing attribute does, when ``package.name`` did not move.
    """
    old = f"{package}.{name}"
    if new_name(old) is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return importlib.import_module(old)

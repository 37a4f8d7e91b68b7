"""Type-check the ``thresher`` package strictly with mypy, as it is installed.

setup.py maps two source trees onto one import package (``client/thresher`` is ``thresher`` and
``services/`` is ``thresher.services``), a layout mypy cannot follow from the sources. This script lays
the two trees out as the one package under ``build/typecheck`` (symbolic links, nothing copied) and runs
mypy there with the settings in pyproject.toml's ``[tool.mypy]``.

Usage: ``python scripts/typecheck.py [extra mypy arguments]``; the exit status is mypy's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ROOT / "build" / "typecheck"


def lay_out_package(layout: Path = LAYOUT) -> Path:
    """Build ``<layout>/thresher`` (default ``build/typecheck``) from links to the client's entries and ``services/``."""
    shutil.rmtree(layout, ignore_errors=True)
    package = layout / "thresher"
    package.mkdir(parents=True)
    for entry in sorted((ROOT / "client" / "thresher").iterdir()):
        if entry.name == "__pycache__":
            continue
        os.symlink(entry, package / entry.name)
    os.symlink(ROOT / "services", package / "services")
    return layout


def main(argv: list[str]) -> int:
    layout = lay_out_package()
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "-p", "thresher", *argv]
    # Paths in mypy's messages are relative to the layout; the links name the same files in the source trees.
    return subprocess.call(command, cwd=layout)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Check the import contracts in pyproject.toml's ``[tool.importlinter]`` with import-linter, as installed.

import-linter finds a package's modules by walking its one directory, but setup.py maps two source trees onto
``thresher`` (``client/thresher`` and ``services/`` as ``thresher.services``), so from the sources it never
sees the services. This script lays the package out as installed under ``build/importlint`` (links, as
``scripts/typecheck.py`` does for mypy) and runs ``lint-imports`` there, where ``thresher`` resolves to the
layout.

Usage: ``python scripts/lint_imports.py [lint-imports arguments]``; the exit status is lint-imports'.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from typecheck import ROOT, lay_out_package  # noqa: E402 - the script's own folder, put on the path above

LAYOUT = ROOT / "build" / "importlint"


def main(argv: list[str]) -> int:
    layout = lay_out_package(LAYOUT)
    lint_imports = Path(sys.executable).with_name("lint-imports")
    # lint-imports puts its working directory first on sys.path, so `thresher` is the layout's package; the
    # graph is small, so no cache (a cache in the layout would only go stale).
    command = [str(lint_imports), str(ROOT / "pyproject.toml"), "--no-cache", "--no-logo", *argv]
    return subprocess.call(command, cwd=layout)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

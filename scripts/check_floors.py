"""Fails unless every installed direct requirement of Thresher (core and the named extras) sits at its floor.

.ci/run resolves a venv with `uv pip install --resolution lowest-direct`, runs the client tests in it,
and runs this to prove the floors in pyproject.toml are what was tested:

    .venv-lowest/bin/python scripts/check_floors.py server test
"""

from __future__ import annotations

import importlib.metadata
import re
import sys

_FLOOR = re.compile(r">=\s*([0-9][0-9A-Za-z.]*)")


def main(extras: list[str]) -> int:
    wrong = []
    for requirement in importlib.metadata.requires("thresher") or []:
        spec, _, marker = requirement.partition(";")
        extra = re.search(r'extra\s*==\s*"([^"]+)"', marker)
        if extra and extra.group(1) not in extras:
            continue
        name = re.split(r"[\s\[<>=!~]", spec.strip(), maxsplit=1)[0]
        floor = _FLOOR.search(spec)
        if name == "thresher" or floor is None:
            continue
        installed = importlib.metadata.version(name)
        status = "ok" if _same(installed, floor.group(1)) else "NOT AT FLOOR"
        print(f"{name:28} floor {floor.group(1):10} installed {installed:10} {status}")
        if status != "ok":
            wrong.append(name)
    if wrong:
        print(f"installed above their floors: {', '.join(wrong)}", file=sys.stderr)
        return 1
    return 0


def _same(installed: str, floor: str) -> bool:
    trim = lambda version: [int(p) for p in version.split(".") if p.isdigit()]  # noqa: E731
    a, b = trim(installed), trim(floor)
    width = max(len(a), len(b))
    return a + [0] * (width - len(a)) == b + [0] * (width - len(b))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

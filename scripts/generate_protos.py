"""Regenerates the Python stubs under client/thresher/v1 from protos/thresher/v1, and the Flight SQL
messages under client/thresher/flight_sql_protocol from protos/arrow/flight/protocol/sql.

The stubs come from the grpcio-tools pinned in scripts/protoc-requirements.txt, an old one on purpose
(its code runs on old and new protobuf/grpcio runtimes alike), in a venv of its own:

    python3 -m venv .venv-protoc && .venv-protoc/bin/pip install -r scripts/protoc-requirements.txt
    .venv-protoc/bin/python scripts/generate_protos.py          # `--check` fails when the stubs differ
"""

from __future__ import annotations

import argparse
import filecmp
import pathlib
import shutil
import sys
import tempfile

import grpc_tools
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
STUBS = ROOT / "client" / "thresher" / "v1"
# The protocol's own package (arrow.flight.protocol.sql), generated into a folder of its own: (protos, stubs).
FLIGHT_SQL = ("arrow/flight/protocol/sql", ROOT / "client" / "thresher" / "flight_sql_protocol")
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
# The Flight SQL protos declare messages only: their empty gRPC modules are not kept.
MESSAGE_SUFFIXES = ("_pb2.py", "_pb2.pyi")


PINNED = ROOT / "scripts" / "protoc-requirements.txt"


def check_tools_version() -> None:
    """Refuses another grpcio-tools than the pinned one: its code would raise the runtime floors."""
    from importlib.metadata import version

    pinned = next(
        line.split("==", 1)[1].strip() for line in PINNED.read_text().splitlines() if line.startswith("grpcio-tools==")
    )
    found = version("grpcio-tools")
    if found != pinned:
        raise SystemExit(
            f"grpcio-tools {found} is not the pinned {pinned}; run this script from a venv with "
            f"`pip install -r {PINNED.relative_to(ROOT)}` (see this script's docstring)"
        )


def generate(out_dir: pathlib.Path) -> None:
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    sources = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "thresher" / "v1").glob("*.proto"))
    sources += sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / FLIGHT_SQL[0]).glob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def generated_files(directory: pathlib.Path, suffixes: tuple[str, ...] = GENERATED_SUFFIXES) -> dict[str, pathlib.Path]:
    return {p.name: p for p in directory.iterdir() if p.name.endswith(suffixes)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed stubs are stale")
    check = parser.parse_args().check
    check_tools_version()
    with tempfile.TemporaryDirectory() as tmp:
        generate(pathlib.Path(tmp))
        pairs = [
            (pathlib.Path(tmp) / "thresher" / "v1", STUBS, GENERATED_SUFFIXES),
            (pathlib.Path(tmp) / FLIGHT_SQL[0], FLIGHT_SQL[1], MESSAGE_SUFFIXES),
        ]
        if check:
            stale = [
                name
                for fresh_dir, stubs, suffixes in pairs
                for name in _stale(generated_files(fresh_dir, suffixes), generated_files(stubs, suffixes))
            ]
            if stale:
                print("stale generated stubs: " + ", ".join(stale), file=sys.stderr)
                return 1
            return 0
        for fresh_dir, stubs, suffixes in pairs:
            for path in generated_files(stubs, suffixes).values():
                path.unlink()
            for name, path in generated_files(fresh_dir, suffixes).items():
                shutil.copyfile(path, stubs / name)
    return 0


def _stale(fresh: dict[str, pathlib.Path], committed: dict[str, pathlib.Path]) -> list[str]:
    """Names missing on either side or whose contents differ."""
    stale = sorted(set(fresh) ^ set(committed))
    return stale + [
        n for n in sorted(set(fresh) & set(committed)) if not filecmp.cmp(fresh[n], committed[n], shallow=False)
    ]


if __name__ == "__main__":
    sys.exit(main())

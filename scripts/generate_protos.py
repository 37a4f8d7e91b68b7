"""Regenerates the Python stubs under client/thresher/v1 from protos/thresher/v1.

Run with `python scripts/generate_protos.py`; `--check` fails when the committed stubs differ.
"""

from __future__ import annotations

import argparse
import filecmp
import pathlib
import shutil
import sys
import tempfile

from grpc_tools import protoc
import grpc_tools

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
STUBS = ROOT / "client" / "thresher" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out_dir: pathlib.Path) -> None:
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    sources = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "thresher" / "v1").glob("*.proto"))
    args = ["protoc", f"-I{PROTOS}", f"-I{include}", f"--python_out={out_dir}", f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}", *sources]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def generated_files(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    return {p.name: p for p in directory.iterdir() if p.name.endswith(GENERATED_SUFFIXES)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed stubs are stale")
    check = parser.parse_args().check
    with tempfile.TemporaryDirectory() as tmp:
        generate(pathlib.Path(tmp))
        fresh = generated_files(pathlib.Path(tmp) / "thresher" / "v1")
        committed = generated_files(STUBS)
        if check:
            stale = sorted(set(fresh) ^ set(committed))
            stale += [n for n in sorted(set(fresh) & set(committed)) if not filecmp.cmp(fresh[n], committed[n], shallow=False)]
            if stale:
                print("stale generated stubs: " + ", ".join(stale), file=sys.stderr)
                return 1
            return 0
        for path in committed.values():
            path.unlink()
        for name, path in fresh.items():
            shutil.copyfile(path, STUBS / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())

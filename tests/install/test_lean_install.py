"""`pip install thresher` is the client: light imports, no server-only packages, a version, type hints."""

from __future__ import annotations

import importlib.metadata
import json
import pathlib
import subprocess
import sys

import thresher

HEAVY = ("torch", "tensorflow", "fiftyone", "duckdb", "polars", "datasets", "ray", "grpc_health", "grpc_reflection")
SERVER_ONLY = {"duckdb", "grpcio-health-checking", "grpcio-reflection"}


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def _requirement_name(requirement: str) -> str:
    return requirement.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].split("!")[0].strip()


def test_importing_thresher_and_its_cli_loads_no_heavy_or_server_module():
    # grpc itself probes for grpc_health/grpc_reflection when they are installed; block them to see whether
    # Thresher's own code would need them.
    process = _python(
        "import sys, json\n"
        "import thresher, thresher.cli, thresher.expressions\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    assert process.returncode == 0, process.stderr
    loaded = set(json.loads(process.stdout))
    assert "thresher" in loaded
    assert loaded.isdisjoint({"torch", "tensorflow", "fiftyone", "duckdb", "polars", "datasets", "ray"}), loaded


def test_the_client_needs_no_server_package():
    process = _python(
        "import sys\n"
        f"for name in {list(HEAVY)!r}: sys.modules[name] = None  # unimportable\n"
        "import thresher, thresher.cli, thresher.expressions, thresher.sql\n"
        "from thresher.cli import main\n"
        "sys.exit(main(['token', 'create', '--subject', 'x']))"
    )
    assert process.returncode == 0, process.stderr


def test_the_core_requirements_hold_no_server_package_and_the_server_extra_does():
    requirements = importlib.metadata.requires("thresher")
    core = {_requirement_name(r).lower() for r in requirements if "extra ==" not in r}
    server = {_requirement_name(r).lower() for r in requirements if 'extra == "server"' in r}
    assert core.isdisjoint(SERVER_ONLY), core
    assert SERVER_ONLY <= server
    extras = set(importlib.metadata.metadata("thresher").get_all("Provides-Extra"))
    assert {
        "server",
        "s3",
        "gcs",
        "postgres",
        "torch",
        "tensorflow",
        "fiftyone",
        "hf",
        "polars",
        "video",
        "ray",
        "all",
        "dev",
    } <= extras


def test_services_without_the_server_extra_say_which_extra_to_install():
    process = _python(
        "import sys\n"
        "sys.modules['duckdb'] = None\n"
        "from thresher.core.errors import MissingExtraError\n"
        "try:\n"
        "    import thresher.services.metadata.server\n"
        "except MissingExtraError as error:\n"
        "    print(error)\n"
    )
    assert process.returncode == 0, process.stderr
    assert "thresher[server]" in process.stdout and "duckdb" in process.stdout
    up = _python(
        "import sys\nsys.modules['duckdb'] = None\nfrom thresher.cli import main\nsys.exit(main(['up', '--port', '0']))"
    )
    assert up.returncode == 2
    assert up.stderr.strip().count("\n") == 0 and "thresher[server]" in up.stderr


def test_version_comes_from_the_package_metadata_and_type_hints_are_marked():
    assert thresher.__version__ == importlib.metadata.version("thresher")
    assert (pathlib.Path(thresher.__file__).parent / "py.typed").is_file()

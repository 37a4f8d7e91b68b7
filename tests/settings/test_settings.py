"""thresher.core.settings: one declaration of every setting, read, checked, documented and refused alike."""

from __future__ import annotations

import ast
import dataclasses
import os
import pathlib
import re
import subprocess
import sys

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from thresher.core.settings import (
    SERVICES,
    SETTINGS,
    Settings,
    SettingsError,
    env_name,
    settings_of,
    settings_table,
    unknown_variables,
)
from thresher.core.transport import open_channel

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_defaults_types_and_sources():
    settings = Settings.from_env({})
    assert settings.metadata_listen == "127.0.0.1:7470" and settings.flight_partition_rows == 1_000_000
    assert settings.home == os.path.expanduser("~/.thresher") and settings.flight_peers == ()
    assert settings.source("home") == "default"
    parsed = Settings.from_env(
        {
            "THRESHER_FLIGHT_PEERS": " a:1, ,b:2",
            "THRESHER_FLIGHT_PARTITION_ROWS": "0",
            "THRESHER_STORAGE_READ_TIMEOUT": "2.5",
            "THRESHER_DEBUG": "yes",
            "THRESHER_METADATA_ADDRESS": "",
        }
    )
    assert parsed.flight_peers == ("a:1", "b:2") and parsed.flight_partition_rows == 0
    assert parsed.storage_read_timeout == 2.5 and parsed.debug is True
    # An empty variable counts as unset.
    assert parsed.metadata_address == "127.0.0.1:7470" and parsed.source("metadata_address") == "default"
    assert parsed.source("flight_peers") == "$THRESHER_FLIGHT_PEERS"


@pytest.mark.parametrize(
    "variable, value",
    [
        ("THRESHER_FLIGHT_PARTITION_ROWS", "many"),
        ("THRESHER_FLIGHT_PARTITION_ROWS", "-1"),
        ("THRESHER_STORAGE_CONNECT_TIMEOUT", "0"),
        ("THRESHER_DEBUG", "maybe"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_value(variable, value):
    with pytest.raises(SettingsError, match=rf"\${variable} must be .*{value!r}") as caught:
        Settings.from_env({variable: value})
    assert caught.value.variable == variable


def test_secrets_are_masked_in_repr_and_in_what_is_shown():
    settings = Settings.from_env(
        {
            "THRESHER_TOKENS": "s3cret=alice:*:write",
            "THRESHER_TOKEN": "t0ken",
            "THRESHER_POSTGRES_URL": "postgresql://u:pw@h/db",
            "THRESHER_SERVICE_TOKEN": "svc",
        }
    )
    text = repr(settings)
    for secret in ("s3cret", "t0ken", "pw@h", "svc"):
        assert secret not in text
    shown = {setting.env: value for setting, value, _ in settings.effective()}
    assert shown["THRESHER_TOKENS"] == shown["THRESHER_TOKEN"] == "********"
    assert shown["THRESHER_SERVICE_TOKEN"] == "********" and shown["THRESHER_TLS_CERT"] == ""
    assert settings.tokens == "s3cret=alice:*:write"  # masked for people, whole for the code


def test_one_naming_rule_and_one_declaration_per_variable():
    names = [setting.env for setting in SETTINGS]
    assert len(names) == len(set(names))
    for setting in SETTINGS:
        assert setting.env == "THRESHER_" + setting.name.upper() and setting.doc and setting.parts
        # Only services bind; callers connect.
        if setting.name.endswith("_listen"):
            assert set(setting.parts) <= set(SERVICES), setting.env
    fields = {field.name for field in dataclasses.fields(Settings)} - {"sources"}
    assert fields == {setting.name for setting in SETTINGS}


def test_an_unknown_variable_is_named_with_the_closest_known_one():
    found = dict(unknown_variables({"THRESHER_METADATA_LISTN": "x", "THRESHER_TOKEN_FILE": "y", "HOME": "/"}))
    assert set(found) == {"THRESHER_METADATA_LISTN", "THRESHER_TOKEN_FILE"}
    assert "did you mean THRESHER_METADATA_LISTEN?" in found["THRESHER_METADATA_LISTN"]
    assert "did you mean THRESHER_TOKENS_FILE?" in found["THRESHER_TOKEN_FILE"]
    with pytest.raises(SettingsError, match="THRESHER_METADATA_LISTN.*THRESHER_METADATA_LISTEN"):
        Settings.from_env({"THRESHER_METADATA_LISTN": "x"}, strict=True)
    Settings.from_env({"THRESHER_METADATA_LISTN": "x"})  # only services (strict) refuse it


def test_an_old_name_that_breaks_the_rule_still_works_with_a_warning_naming_the_new_one():
    settings = Settings.from_env({"THRESHER_SCANNER_ADDRESS": "0.0.0.0:9"})
    assert settings.scanner_listen == "0.0.0.0:9" and settings.scanner_address == "0.0.0.0:9"
    (message,) = settings.deprecations("scanner")
    assert "THRESHER_SCANNER_ADDRESS" in message and "set THRESHER_SCANNER_LISTEN" in message
    assert settings.deprecations("client") == []
    both = Settings.from_env({"THRESHER_FLIGHT_ADDRESS": "h:1", "THRESHER_FLIGHT_LISTEN": "0.0.0.0:2"})
    assert both.flight_listen == "0.0.0.0:2" and both.deprecations("flight") == []


def test_flags_lay_over_the_environment_and_a_bad_flag_is_named():
    settings = Settings.from_env({"THRESHER_FLIGHT_PARTITION_ROWS": "5"})
    laid = settings.overlay({"flight_partition_rows": "7", "flight_peers": None})
    assert laid.flight_partition_rows == 7 and laid.source("flight_partition_rows") == "--flight-partition-rows"
    with pytest.raises(SettingsError, match="--flight-partition-rows must be a whole number.*'x'"):
        settings.overlay({"flight_partition_rows": "x"})


def _thresher_literals(path: pathlib.Path) -> list[str]:
    """Strings in ``path`` that are, or start building, a THRESHER_* variable name (docstrings and help
    texts that mention ``$THRESHER_HOME`` in passing are documentation, not reads)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and re.fullmatch(r"THRESHER_[A-Z0-9_]*", node.value.strip())
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    return found


def test_nothing_but_the_settings_module_names_a_thresher_variable():
    settings_module = ROOT / "client" / "thresher" / "core" / "settings.py"
    found = [
        hit
        for folder in ("client", "services")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != settings_module
        for hit in _thresher_literals(path)
    ]
    assert found == [], "read these through thresher.core.settings (env_name() for messages):\n" + "\n".join(found)


def test_the_settings_table_in_the_docs_is_the_generated_one():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import settings_table as script
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    current = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert settings_table() in current
    assert current == script.rendered(current), "run .venv/bin/python scripts/settings_table.py"


@pytest.mark.parametrize("part", SERVICES)
def test_a_services_help_names_every_setting_it_reads(part, capsys):
    module = {
        "metadata": "thresher.services.metadata.server",
        "scanner": "thresher.services.scanner.server",
        "flight": "thresher.services.flight.server",
    }[part]
    main = __import__(module, fromlist=["main"]).main
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    missing = [setting.env for setting in settings_of(part) if f"${setting.env}" not in text]
    assert missing == [], f"{part} --help misses {missing}"
    flagged = [setting for setting in settings_of(part) if setting.has_flag]
    assert flagged and all(setting.flag in text for setting in flagged)


def _service_env(**extra: str) -> dict[str, str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("THRESHER_")}
    return {**environ, **extra}


@pytest.mark.parametrize(
    "module",
    [
        "thresher.services.metadata",
        # All three share the settings check; the quick selection starts one interpreter, not three.
        pytest.param("thresher.services.scanner", marks=pytest.mark.slow(reason="a second service, same check")),
        pytest.param("thresher.services.flight", marks=pytest.mark.slow(reason="a third service, same check")),
    ],
)
def test_a_service_started_with_a_misspelt_variable_refuses_to_start(module, tmp_path):
    environ = _service_env(THRESHER_HOME=str(tmp_path), THRESHER_TOKENS_FIEL="/etc/tokens")
    done = subprocess.run([sys.executable, "-m", module], env=environ, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "unknown setting THRESHER_TOKENS_FIEL" in done.stderr
    assert "did you mean THRESHER_TOKENS_FILE?" in done.stderr
    assert not (tmp_path / "metadata.duckdb").exists()  # refused before opening anything


def test_a_service_started_with_a_bad_value_names_it(tmp_path):
    environ = _service_env(THRESHER_HOME=str(tmp_path), THRESHER_FLIGHT_PARTITION_ROWS="lots")
    done = subprocess.run(
        [sys.executable, "-m", "thresher.services.flight"], env=environ, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "$THRESHER_FLIGHT_PARTITION_ROWS must be a whole number" in done.stderr


def test_the_metadata_service_runs_from_its_settings_alone(tmp_path):
    """``python -m thresher.services.metadata`` configured by the environment only, stopped by SIGTERM."""
    environ = _service_env(THRESHER_HOME=str(tmp_path), THRESHER_METADATA_LISTEN="127.0.0.1:0")
    process = subprocess.Popen(
        [sys.executable, "-m", "thresher.services.metadata"],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        port = None
        for line in process.stdout:  # the service logs the port it bound: "serving ... (port N)"
            found = re.search(r"serving .* on 127\.0\.0\.1:0 \(port (\d+)\)", line)
            if found:
                port = int(found.group(1))
                break
        assert port, "the service did not say where it listens"
        with open_channel(f"127.0.0.1:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=60)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert (tmp_path / "metadata.duckdb").exists()
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output


def test_create_server_takes_settings_for_each_service(tmp_path):
    from thresher.services.flight.server import create_server as create_flight
    from thresher.services.metadata.server import create_server as create_metadata
    from thresher.services.scanner.server import create_server as create_scanner

    settings = Settings.from_env(
        {
            env_name("home"): str(tmp_path),
            env_name("metadata_listen"): "127.0.0.1:0",
            env_name("metadata_data_listen"): "127.0.0.1:0",
            # the old name of the scanner's bind address still binds it
            "THRESHER_SCANNER_ADDRESS": "127.0.0.1:0",
            env_name("flight_listen"): "127.0.0.1:0",
            env_name("flight_partition_rows"): "3",
        }
    )
    metadata, port = create_metadata(settings)
    try:
        assert port > 0 and metadata.data_port > 0
        settings = settings.replace(
            metadata_address=f"127.0.0.1:{port}", metadata_data_address=f"127.0.0.1:{metadata.data_port}"
        )
        scanner, scanner_port = create_scanner(settings)
        flight, flight_port = create_flight(settings)
        try:
            assert scanner_port > 0 and flight_port == flight.port > 0 and flight.partition_rows == 3
            with open_channel(f"127.0.0.1:{scanner_port}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
        finally:
            flight.shutdown()
            scanner.stop(grace=None).wait()
    finally:
        assert metadata.stop(grace=None).wait(timeout=60)
    # The store create_server opened is closed with the server: the DuckDB file opens again.
    from thresher.services.metadata.server import open_store

    open_store(str(tmp_path)).close()


def test_reading_one_setting_agrees_with_reading_them_all_and_ignores_the_others():
    environ = {"THRESHER_SCANNER_ADDRESS": "h:1", "THRESHER_STORAGE_RETRIES": "5", "THRESHER_HOME": "/srv/t"}
    everything = Settings.from_env(environ)
    for setting in SETTINGS:
        assert Settings.read(setting.name, environ) == getattr(everything, setting.name), setting.name
    # A bad value elsewhere does not stop a read of this one; reading the bad one names it.
    environ["THRESHER_FLIGHT_PARTITION_ROWS"] = "lots"
    assert Settings.read("storage_retries", environ) == 5
    with pytest.raises(SettingsError, match="THRESHER_FLIGHT_PARTITION_ROWS"):
        Settings.read("flight_partition_rows", environ)
    with pytest.raises(KeyError, match="no setting named 'nope'"):
        Settings.read("nope", environ)


def test_a_flag_reaches_code_that_reads_one_setting_from_the_process_environment(monkeypatch):
    """``--staging-dir`` on the metadata service moves the staging folder, which StagingArea reads alone."""
    from thresher.core.settings import from_arguments
    from thresher.services.metadata.server import build_parser
    from thresher.services.metadata.staged_uploads import StagingArea

    # Empty (unset) through monkeypatch, which then removes what the flags write there after the test.
    monkeypatch.setenv("THRESHER_STAGING_DIR", "")
    monkeypatch.setenv("THRESHER_METADATA_LISTEN", "")
    monkeypatch.setenv("THRESHER_STORAGE_RETRIES", "4")
    parser = build_parser()
    settings = from_arguments(
        parser, parser.parse_args(["--staging-dir", "/srv/staging", "--address", "h:1"]), "metadata"
    )
    assert settings.staging_dir == "/srv/staging" and settings.metadata_listen == "h:1"
    assert settings.source("metadata_listen") == "--metadata-listen" and settings.storage_retries == 4
    assert StagingArea().directory == "/srv/staging"

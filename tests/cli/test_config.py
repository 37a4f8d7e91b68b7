"""``thresher config``: the effective settings of the environment, their sources, secrets masked."""

from __future__ import annotations

from thresher.cli import main


def _rows(text: str) -> dict[str, list[str]]:
    """The table's rows by variable: [value, source, read by] (Rich draws cells between │)."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if len(cells) == 4 and cells[0].startswith("THRESHER_"):
            rows[cells[0]] = cells[1:]
    return rows


def test_config_prints_every_setting_with_its_source_and_masks_secrets(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("THRESHER_TOKEN", "very-secret-token")
    monkeypatch.setenv("THRESHER_FLIGHT_PARTITION_ROWS", "42")
    monkeypatch.setenv("THRESHER_HOME", str(tmp_path))
    monkeypatch.delenv("THRESHER_METADATA_ADDRESS", raising=False)
    assert main(["config"]) == 0
    captured = capsys.readouterr()
    assert "very-secret-token" not in captured.out + captured.err
    rows = _rows(captured.out)
    assert rows["THRESHER_TOKEN"][:2] == ["********", "env"]
    assert rows["THRESHER_FLIGHT_PARTITION_ROWS"][:2] == ["42", "env"]
    assert rows["THRESHER_HOME"][:2] == [str(tmp_path), "env"]
    assert rows["THRESHER_METADATA_ADDRESS"] == ["127.0.0.1:7470", "default", "scanner, flight, client, cli, gallery"]
    assert "THRESHER_TOKENS" in rows and "THRESHER_STORAGE_RETRIES" in rows


def test_config_filters_by_part_and_by_what_the_environment_sets(monkeypatch, capsys):
    monkeypatch.setenv("THRESHER_FLIGHT_PEERS", "a:1,b:2")
    assert main(["config", "--part", "flight", "--changed"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["THRESHER_FLIGHT_PEERS"][:2] == ["a:1,b:2", "env"]
    assert all(source != "default" for _, source, _ in rows.values())
    assert "THRESHER_DOWNLOAD_DIR" not in rows  # set by the test fixtures, but the flight service does not read it


def test_config_shows_a_renamed_variable_and_reports_an_unknown_one(monkeypatch, capsys):
    monkeypatch.setenv("THRESHER_SCANNER_ADDRESS", "127.0.0.1:9999")
    monkeypatch.setenv("THRESHER_FLIGTH_PEERS", "x:1")
    assert main(["config"]) == 2
    captured = capsys.readouterr()
    rows = _rows(captured.out)
    assert rows["THRESHER_SCANNER_LISTEN"][1].startswith("env, as THRESHER_SCANNER_ADDRESS (deprecated")
    assert rows["THRESHER_SCANNER_ADDRESS"][:2] == ["127.0.0.1:9999", "env"]
    assert "unknown setting THRESHER_FLIGTH_PEERS" in captured.err
    assert "did you mean THRESHER_FLIGHT_PEERS?" in captured.err


def test_a_bad_value_is_a_user_error_naming_it(monkeypatch, capsys):
    monkeypatch.setenv("THRESHER_STORAGE_RETRIES", "lots")
    assert main(["config"]) == 2
    assert "$THRESHER_STORAGE_RETRIES must be a whole number, 0 or more, not 'lots'" in capsys.readouterr().err


def test_up_refuses_a_misspelt_variable_before_starting_anything(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("THRESHER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("THRESHER_METADATA_ADRESS", "127.0.0.1:1")
    assert main(["up", "--port", "0", "--no-gallery"]) == 2
    assert "did you mean THRESHER_METADATA_ADDRESS?" in capsys.readouterr().err
    assert not (tmp_path / "home").exists()

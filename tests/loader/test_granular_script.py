"""A granular user's training script runs unchanged with `thresher.bag` in place of `granular`."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).with_name("granular_script.py")


def run_script(module: str, folder: pathlib.Path) -> dict:
    folder.mkdir()
    out = folder / "result.json"
    subprocess.run(
        [sys.executable, str(SCRIPT), module, str(folder / "data"), str(out)],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    return json.loads(out.read_text())


@pytest.mark.slow(reason="runs a separate interpreter with the granular package")
def test_the_script_gives_granulars_batches_with_thresher_bag(tmp_path):
    pytest.importorskip("granular")
    theirs = run_script("granular", tmp_path / "granular")
    ours = run_script("thresher.bag", tmp_path / "thresher")
    # granular's save() holds the step alone; ours adds the epoch.
    assert ours["state"]["step"] == theirs["state"]["step"] == 30
    for part in ("first", "after", "reloaded", "resumed", "shards", "consumed"):
        assert ours[part] == theirs[part], part
    # Within the run: a resume, and a load while running, continue where the state was taken.
    assert ours["reloaded"] == ours["resumed"] == ours["after"]
    assert len(ours["first"][0]["label"]) == 6 and "noise" in ours["first"][0]

"""The bag benchmark runs end to end and prints both ratios (its figures are not asserted)."""

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bag.py"


def test_benchmark_prints_write_and_read_ratios():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--datapoints", "200", "--reads", "500", "--repeats", "1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    for name, unit in (("write", "MB/s"), ("read", "dp/s")):
        line = rf"^{name} .* {unit} .* ratio \d+\.\d+x   \(by CPU time \d+\.\d+x\)$"
        assert re.search(line, result.stdout, re.M), result.stdout

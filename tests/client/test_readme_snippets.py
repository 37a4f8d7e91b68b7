"""The README's "Use it with…" snippets run as written, against the real services."""

from __future__ import annotations

import io
import pathlib
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Use it with…"


def snippets() -> list[str]:
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def png(value: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def ds(make_datasource):
    files = {f"pets/{i:02d}.png": png(i * 10) for i in range(8)}
    ds = make_datasource(files)
    ds.upload(pd.DataFrame({"path": list(files), "label": ["cat", "dog"] * 4, "score": np.linspace(0, 1, 8)}))
    return ds


def test_the_section_covers_each_tool():
    names = " ".join(snippets())
    assert len(snippets()) == 5
    for tool in ("import pandas", "import polars", "import duckdb", "import datasets", 'as_ml_dataloader("torch"'):
        assert tool in names, tool


@pytest.mark.parametrize(
    "index",
    [
        pytest.param(0, id="pandas"),
        pytest.param(1, id="polars"),
        pytest.param(2, id="duckdb"),
        pytest.param(3, id="hugging-face"),
        pytest.param(4, id="pytorch", marks=pytest.mark.slow(reason="trains with DataLoader workers")),
    ],
)
def test_snippet_runs(ds, index):
    # The lowest-versions run of the client tests has none of the interop extras.
    for module in {1: ["polars"], 3: ["datasets"], 4: ["torch"]}.get(index, []):
        pytest.importorskip(module)
    namespace = {"ds": ds}
    exec(compile(snippets()[index], f"README.md snippet {index}", "exec"), namespace)  # noqa: S102 - our README
    uploaded = {0: ["confident"], 1: ["double_score", "reviewed"], 2: ["above_half"], 3: ["label_length"]}
    for field in uploaded.get(index, []):
        assert ds[ds[field].is_not_null()].count() > 0, field

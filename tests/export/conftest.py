"""A small datasource of PNG images with metadata, on the suite's services."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pandas as pd
import pytest

import thresher

_names = itertools.count()


def png(seed: int, size: int = 8) -> bytes:
    """A small random RGB image as PNG bytes."""
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    stream = io.BytesIO()
    Image.fromarray(pixels).save(stream, format="PNG")
    return stream.getvalue()


def make_image_source(conn, namespace: str, folder, count: int, note_field: str = "Note"):
    """A scanned datasource of ``count`` images ``img/NN.png`` in ``folder``, with ``label``, ``x`` and a
    text field named ``note_field`` (missing on every fourth image): (datasource, folder)."""
    (folder / "img").mkdir(parents=True)
    paths = [f"img/{i:02}.png" for i in range(count)]
    for i, path in enumerate(paths):
        (folder / path).write_bytes(png(i))
    ds = thresher.datasources.get_or_create(namespace, folder.name, folder, connection=conn)
    ds = ds.wait_until_ready(timeout=60, progress=False)
    ds.upload_metadata_from_dataframe(
        pd.DataFrame(
            {
                "path": paths,
                "label": [i % 3 for i in range(count)],
                "x": [i / 4 for i in range(count)],
                note_field: [None if i % 4 == 0 else f"n{i}" for i in range(count)],
            }
        )
    )
    return ds, folder


@pytest.fixture
def image_source(local_services, namespace, tmp_path):
    """Makes a scanned datasource of ``count`` images ``img/NN.png`` with ``label``, ``x`` and ``Note`` fields."""
    conn = local_services.connect()

    def make(count: int = 10):
        return make_image_source(conn, namespace, tmp_path / f"images{next(_names)}", count)

    return make

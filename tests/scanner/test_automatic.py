import datetime as dt
import io
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pytest
from PIL import Image

from thresher.core.types import TYPE_METADATA_KEY
from thresher.services.scanner.automatic import AutomaticFields, content_types
from thresher.services.scanner.scan_sources import Page


@pytest.mark.parametrize(
    "path, expected",
    [
        ("a/b/photo.JPG", "image/jpeg"),
        ("x.png", "image/png"),
        ("notes.txt", "text/plain"),
        ("archive.tar.gz", "application/gzip"),
        ("dir.with.dots/README", None),
        (".hidden", None),
        ("unknown.zzzz", None),
    ],
)
def test_content_type_from_the_extension(path, expected):
    assert content_types(pa.array([path, "x.png"])).to_pylist() == [expected, "image/png"]


class _MemorySource:
    def __init__(self, files):
        self.files = files

    def open(self, path):
        return io.BytesIO(self.files[path])


def _png(size):
    buffer = io.BytesIO()
    Image.new("RGB", size).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def pool():
    with ThreadPoolExecutor(2) as executor:
        yield executor


def test_batch_without_images_has_no_dimension_columns(pool):
    mtime = dt.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    mtime_ns = int(mtime.timestamp()) * 10**9 + 678_901_999
    batch = AutomaticFields(_MemorySource({}), pool).batch(Page(["a.txt"], [12], [mtime_ns]))
    assert batch.schema.names == ["path", "size", "modified", "content_type"]
    assert batch.to_pylist() == [{"path": "a.txt", "size": 12, "modified": mtime, "content_type": "text/plain"}]
    assert batch.schema.field("modified").type == pa.timestamp("us", tz="UTC")
    assert batch.schema.field("size").metadata[TYPE_METADATA_KEY] == b"int"


def test_images_get_width_and_height_and_unreadable_ones_none(pool):
    source = _MemorySource({"a.png": _png((10, 20)), "broken.png": b"nope"})
    page = Page(["a.png", "b.txt", "broken.png"], [1, 1, 1], [0, 0, 0])
    rows = AutomaticFields(source, pool).batch(page).to_pylist()
    assert [(r["width"], r["height"]) for r in rows] == [(10, 20), (None, None), (None, None)]


def test_an_image_that_vanished_keeps_its_other_fields(pool):
    class Vanished(_MemorySource):
        def open(self, path):
            raise FileNotFoundError(path)

    rows = AutomaticFields(Vanished({}), pool).batch(Page(["gone.png"], [5], [0])).to_pylist()
    assert rows[0]["size"] == 5 and rows[0]["width"] is None


def test_tagged_pages_get_an_etag_column_and_recorded_types_fill_in_for_extensions(pool):
    page = Page(
        ["a.txt", "README", "blob", "photo"],
        [1, 1, 1, 1],
        [0, 0, 0, 0],
        ["e1", "e2", "e3", "e4"],
        ["application/octet-stream", "text/markdown", "binary/octet-stream", "image/png"],
    )
    source = _MemorySource({"photo": _png((3, 4))})
    batch = AutomaticFields(source, pool).batch(page)
    assert batch.schema.names == ["path", "size", "modified", "content_type", "etag", "width", "height"]
    rows = {row["path"]: row for row in batch.to_pylist()}
    # The extension decides where it implies a type; generic octet-streams say nothing.
    assert [rows[p]["content_type"] for p in ("a.txt", "README", "blob", "photo")] == [
        "text/plain",
        "text/markdown",
        None,
        "image/png",
    ]
    assert rows["a.txt"]["etag"] == "e1" and (rows["photo"]["width"], rows["photo"]["height"]) == (3, 4)


def test_without_an_image_pool_no_headers_are_read(pool):
    batch = AutomaticFields(_MemorySource({}), None).batch(Page(["a.png"], [1], [0]))
    assert batch.schema.names == ["path", "size", "modified", "content_type"]

"""The automatic fields a scan gives every datapoint: size, modified, content_type, and width/height for images."""

from __future__ import annotations

import functools
import logging
import mimetypes
from concurrent.futures import Executor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from thresher.services.scanner.images import image_size
from thresher.services.scanner.sources import Page, Source
from thresher.types import PATH_COLUMN, TYPE_METADATA_KEY, FieldType

log = logging.getLogger(__name__)

SIZE, MODIFIED, CONTENT_TYPE, WIDTH, HEIGHT = "size", "modified", "content_type", "width", "height"
FIELD_TYPES = {
    SIZE: FieldType.INT,
    MODIFIED: FieldType.DATETIME,
    CONTENT_TYPE: FieldType.STRING,
    WIDTH: FieldType.INT,
    HEIGHT: FieldType.INT,
}

# What mimetypes reports as an encoding rather than a type (x.gz -> (None, "gzip")).
_ENCODING_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/x-brotli",
}


def _field(name: str) -> pa.Field:
    kind = FIELD_TYPES[name]
    return pa.field(name, kind.arrow_type, metadata={TYPE_METADATA_KEY: kind.value.encode()})


_PATH_FIELD = pa.field(PATH_COLUMN, pa.string())
_SCHEMA = pa.schema([_PATH_FIELD, _field(SIZE), _field(MODIFIED), _field(CONTENT_TYPE)])
_IMAGE_SCHEMA = _SCHEMA.append(_field(WIDTH)).append(_field(HEIGHT))
_MODIFIED_TYPE = _SCHEMA.field(MODIFIED).type


@functools.lru_cache(maxsize=4096)
def _type_of_extension(extension: str) -> str | None:
    kind, encoding = mimetypes.guess_type("x." + extension, strict=False)
    return kind or _ENCODING_TYPES.get(encoding or "")


def content_types(paths: pa.Array) -> pa.Array:
    """The MIME type each path's extension implies (null where it implies none).

    Computed per distinct extension: a batch has thousands of paths and a handful of extensions.
    """
    # The extension follows the last dot of the file name, unless the name starts with it (hidden files).
    found = pc.struct_field(pc.extract_regex(paths, r"[^/]\.(?P<ext>[^./]*)$"), "ext")
    extensions = pc.utf8_lower(found).dictionary_encode()
    kinds = pa.array([_type_of_extension(e) for e in extensions.dictionary.to_pylist()], pa.string())
    return kinds.take(extensions.indices)


class AutomaticFields:
    """Turns listed files into a record batch of (path, automatic fields)."""

    def __init__(self, source: Source, pool: Executor) -> None:
        self._source = source
        self._pool = pool

    def batch(self, page: Page) -> pa.RecordBatch:
        """The page's rows with their automatic fields; its paths must be valid UTF-8 (Arrow strings are)."""
        paths = pa.array(page.paths, pa.string())
        types = content_types(paths)
        # mtime_ns // 1000 floors, also before 1970.
        micros = np.array(page.mtimes_ns, dtype=np.int64) // 1000
        columns = [paths, pa.array(page.sizes, pa.int64()), pa.array(micros).view(_MODIFIED_TYPE), types]
        images = np.flatnonzero(pc.starts_with(types, "image/").fill_null(False).to_numpy(zero_copy_only=False))
        if len(images) == 0:
            return pa.RecordBatch.from_arrays(columns, schema=_SCHEMA)
        widths = np.zeros(len(page), np.int64)
        heights = np.zeros(len(page), np.int64)
        known = np.zeros(len(page), bool)
        # Reading a header is a small blocking read per file: a few threads overlap them.
        for row, size in zip(images, self._pool.map(self._image_size, [page.paths[i] for i in images])):
            if size is not None:
                widths[row], heights[row] = size
                known[row] = True
        columns += [pa.array(widths, mask=~known), pa.array(heights, mask=~known)]
        return pa.RecordBatch.from_arrays(columns, schema=_IMAGE_SCHEMA)

    def _image_size(self, path: str) -> tuple[int, int] | None:
        try:
            with self._source.open(path) as file:
                return image_size(file)
        except OSError as error:
            # The file changed or vanished since it was listed; its other fields still hold.
            log.warning("cannot read the image header of %s: %s", path, error)
            return None


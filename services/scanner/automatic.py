"""The automatic fields a scan gives every datapoint: size, modified, content_type, width/height for
images, and etag for sources that tag their objects (S3 ETag, GCS MD5, git blob id).

content_type is the type the path's extension implies; where it implies none, the type the store
records for the object (when its listing gives one), unless that is a generic octet-stream.
"""

from __future__ import annotations

import functools
import logging
import mimetypes
from concurrent.futures import Executor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from thresher.core.types import PATH_COLUMN, TYPE_METADATA_KEY, FieldType
from thresher.services.scanner.images import image_size
from thresher.services.scanner.scan_sources import Page, Source

log = logging.getLogger(__name__)

SIZE, MODIFIED, CONTENT_TYPE, WIDTH, HEIGHT, ETAG = "size", "modified", "content_type", "width", "height", "etag"
FIELD_TYPES = {
    SIZE: FieldType.INT,
    MODIFIED: FieldType.DATETIME,
    CONTENT_TYPE: FieldType.STRING,
    WIDTH: FieldType.INT,
    HEIGHT: FieldType.INT,
    ETAG: FieldType.STRING,
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
_BASE_FIELDS = [_PATH_FIELD, _field(SIZE), _field(MODIFIED), _field(CONTENT_TYPE)]
_ETAG_FIELD = _field(ETAG)
_IMAGE_FIELDS = [_field(WIDTH), _field(HEIGHT)]
_MODIFIED_TYPE = _BASE_FIELDS[2].type
# Types an uploader records when it knows nothing better; they say less than the extension does.
_GENERIC_TYPES = pa.array(["application/octet-stream", "binary/octet-stream"])
_NO_TYPE = pa.scalar(None, pa.string())


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


def page_content_types(paths: pa.Array, recorded: list[str | None] | None) -> pa.Array:
    """The extension's type per path, else the store's recorded type (see the module docstring)."""
    by_extension = content_types(paths)
    if recorded is None:
        return by_extension
    stored = pa.array(recorded, pa.string())
    stored = pc.if_else(pc.is_in(stored, value_set=_GENERIC_TYPES), _NO_TYPE, stored)
    return pc.coalesce(by_extension, stored)


class AutomaticFields:
    """Turns listed files into a record batch of (path, automatic fields).

    Image headers are read in ``pool``; without one (remote image sizes turned off) width and height
    are left out.
    """

    def __init__(self, source: Source, pool: Executor | None) -> None:
        self._source = source
        self._pool = pool

    def batch(self, page: Page) -> pa.RecordBatch:
        """The page's rows with their automatic fields; its paths must be valid UTF-8 (Arrow strings are)."""
        paths = pa.array(page.paths, pa.string())
        types = page_content_types(paths, page.content_types)
        # mtime_ns // 1000 floors, also before 1970.
        micros = np.array(page.mtimes_ns, dtype=np.int64) // 1000
        fields = list(_BASE_FIELDS)
        columns = [paths, pa.array(page.sizes, pa.int64()), pa.array(micros).view(_MODIFIED_TYPE), types]
        if page.etags is not None:
            fields.append(_ETAG_FIELD)
            columns.append(pa.array(page.etags, pa.string()))
        images = np.flatnonzero(pc.starts_with(types, "image/").fill_null(False).to_numpy(zero_copy_only=False))
        if len(images) == 0 or self._pool is None:
            return pa.RecordBatch.from_arrays(columns, schema=pa.schema(fields))
        widths = np.zeros(len(page), np.int64)
        heights = np.zeros(len(page), np.int64)
        known = np.zeros(len(page), bool)
        # Reading a header is a small blocking read per file: a few threads overlap them.
        for row, size in zip(images, self._pool.map(self._image_size, [page.paths[i] for i in images])):
            if size is not None:
                widths[row], heights[row] = size
                known[row] = True
        columns += [pa.array(widths, mask=~known), pa.array(heights, mask=~known)]
        return pa.RecordBatch.from_arrays(columns, schema=pa.schema(fields + _IMAGE_FIELDS))

    def _image_size(self, path: str) -> tuple[int, int] | None:
        try:
            with self._source.open(path) as file:
                return image_size(file)
        except OSError as error:
            # The file changed or vanished since it was listed; its other fields still hold.
            log.warning("cannot read the image header of %s: %s", path, error)
            return None

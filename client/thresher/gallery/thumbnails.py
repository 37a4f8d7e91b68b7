"""Thumbnails made once with Pillow and kept on disk by the sha256 of the image's bytes.

Two small maps on disk: ``keys/`` (datasource, datapoint, version → content digest), so a warm
request needs no bytes from the service, and ``thumbs/`` (digest → WebP thumbnail). Files are written
to a temporary name and renamed, so a reader never sees half a thumbnail.
"""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
import tempfile

SIZE = 256
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")
# Served inline by their own type; anything else (SVG and HTML included) only as a download.
INLINE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}


class NotAnImageError(ValueError):
    """The bytes are not an image Pillow can read."""


def is_image_path(path: str) -> bool:
    return path.lower().endswith(IMAGE_SUFFIXES)


class ThumbnailCache:
    """Thumbnails of at most SIZE×SIZE pixels under ``folder``."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = pathlib.Path(folder)
        (self.folder / "keys").mkdir(parents=True, exist_ok=True)
        (self.folder / "thumbs").mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(datasource_id: int, datapoint_id: int, version: str) -> str:
        return hashlib.sha256(f"{datasource_id}/{datapoint_id}/{version}".encode()).hexdigest()

    def _thumb_path(self, digest: str) -> pathlib.Path:
        return self.folder / "thumbs" / digest[:2] / f"{digest}.webp"

    def lookup(self, key: str) -> tuple[str, pathlib.Path] | None:
        """(content digest, thumbnail file) for a key seen before, else None."""
        try:
            digest = (self.folder / "keys" / key[:2] / key).read_text()
        except FileNotFoundError:
            return None
        path = self._thumb_path(digest)
        return (digest, path) if path.exists() else None

    def add(self, key: str, data: bytes) -> tuple[str, pathlib.Path]:
        """Makes (or finds, by content) the thumbnail of ``data`` and remembers it under ``key``."""
        digest = hashlib.sha256(data).hexdigest()
        path = self._thumb_path(digest)
        if not path.exists():
            _write_atomically(path, make_thumbnail(data))
        _write_atomically(self.folder / "keys" / key[:2] / key, digest.encode())
        return digest, path


def make_thumbnail(data: bytes) -> bytes:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.draft("RGB", (SIZE, SIZE))  # JPEG decodes at a reduced scale: much faster
            opened.thumbnail((SIZE, SIZE))
            image: Image.Image = opened
            if image.mode not in ("RGB", "RGBA"):
                image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
            out = io.BytesIO()
            image.save(out, "WEBP", quality=80, method=0)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise NotAnImageError(f"not an image Pillow can read: {error}") from None


def _write_atomically(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise

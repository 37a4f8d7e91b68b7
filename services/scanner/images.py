"""Image dimensions from the file header, without decoding pixels.

PNG, GIF, BMP and JPEG headers are parsed here (a few bytes, or a walk over JPEG segment headers);
other formats fall back to Pillow, whose ``Image.open`` also reads only the header.
"""

from __future__ import annotations

import logging
import struct
from typing import BinaryIO

log = logging.getLogger(__name__)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Start-of-frame markers carry the dimensions; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD9)) | {0x01}
_JPEG_MAX_SEGMENTS = 1024


def image_size(file: BinaryIO) -> tuple[int, int] | None:
    """(width, height) of the image in ``file``; None when it is not an image Pillow or we can read."""
    head = file.read(26)
    if head.startswith(_PNG_SIGNATURE) and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return struct.unpack("<HH", head[6:10])
    if head[:2] == b"BM" and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        # A negative height marks a top-down bitmap.
        return width, abs(height)
    if head[:2] == b"\xff\xd8":
        file.seek(2)
        size = _jpeg_size(file)
        if size is not None:
            return size
    file.seek(0)
    return _pillow_size(file)


def _jpeg_size(file: BinaryIO) -> tuple[int, int] | None:
    for _ in range(_JPEG_MAX_SEGMENTS):
        byte = file.read(1)
        while byte and byte != b"\xff":  # tolerate garbage between segments, as decoders do
            byte = file.read(1)
        while byte == b"\xff":  # fill bytes
            byte = file.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker in _JPEG_STANDALONE:
            continue
        length_bytes = file.read(2)
        if len(length_bytes) < 2:
            return None
        (length,) = struct.unpack(">H", length_bytes)
        if marker in _JPEG_SOF:
            frame = file.read(5)
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        if marker in (0xD9, 0xDA):  # end of image, or start of scan with no frame header before it
            return None
        file.seek(length - 2, 1)
    return None


def _pillow_size(file: BinaryIO) -> tuple[int, int] | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        # SyntaxError is what some Pillow plugins raise for a malformed header.
        log.debug("no image size: %s", error)
        return None

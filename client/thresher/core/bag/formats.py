"""Encoders and decoders for the types a spec names: ``encoders[type](value) -> bytes`` and back.

``encoders`` and ``decoders`` are plain dicts like ``granular.encoders``/``granular.decoders``, so
``{**encoders, "mine": fn}`` extends them. Every entry is a module-level function or a
``functools.partial`` of one, so readers and writers holding them pickle into worker processes.
"""

from __future__ import annotations

import io
import operator
import struct
from collections.abc import Callable
from functools import partial
from typing import Any

import msgpack
import numpy as np

from thresher.core.bag import video
from thresher.core.bag.arrays import decode_array, decode_tree, encode_array, encode_tree
from thresher.core.bag.bag_errors import DecodeError, EncodeError

# Layouts are format strings, not struct.Struct objects, because those do not pickle.
_i64, _u64, _f64 = "<q", "<Q", "<d"
INT_BYTES = 16  # granular's decoder reads at most 16 bytes, so wider ints would not read back there


def encode_bytes(value: bytes | bytearray | memoryview) -> bytes:
    """Bytes as they are."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise EncodeError(f"the bytes format takes bytes, got {type(value).__name__}")


def decode_bytes(buffer: bytes) -> bytes:
    """Bytes as they are."""
    return buffer


def encode_utf8(value: str) -> bytes:
    """A string as UTF-8."""
    return value.encode("utf-8")


def decode_utf8(buffer: bytes) -> str:
    """UTF-8 bytes as a string."""
    return buffer.decode("utf-8")


def encode_int(value: int) -> bytes:
    """Little-endian two's complement in the fewest bytes that hold the sign, e.g. 200 -> 2 bytes."""
    value = operator.index(value)
    size = (value if value >= 0 else ~value).bit_length() // 8 + 1
    if size > INT_BYTES:
        raise EncodeError(f"{value} needs {size} bytes; the int format holds at most {INT_BYTES}")
    return value.to_bytes(size, "little", signed=True)


def decode_int(buffer: bytes) -> int:
    """An int written by :func:`encode_int` (or by ``granular``)."""
    if not 0 < len(buffer) <= INT_BYTES:
        raise DecodeError(f"an int record has 1 to {INT_BYTES} bytes, got {len(buffer)}")
    return int.from_bytes(buffer, "little", signed=True)


def encode_fixed(layout: str, value: Any) -> bytes:
    """A number in a fixed 8-byte layout (``i64``, ``u64``, ``f64``)."""
    try:
        return struct.pack(layout, value)
    except struct.error as e:
        raise EncodeError(f"{value!r} does not fit the {layout} layout: {e}") from e


def decode_fixed(layout: str, buffer: bytes) -> Any:
    """A number from a fixed 8-byte layout."""
    if len(buffer) != 8:
        raise DecodeError(f"a {layout} record has 8 bytes, got {len(buffer)}")
    return struct.unpack(layout, buffer)[0]


def encode_image(value: np.ndarray, format: str, **options: Any) -> bytes:
    """An image array (H×W or H×W×C, uint8) compressed with Pillow."""
    from PIL import Image

    stream = io.BytesIO()
    Image.fromarray(np.asarray(value)).save(stream, format=format, **options)
    return stream.getvalue()


def decode_image(buffer: bytes) -> np.ndarray:
    """A compressed image as an array."""
    from PIL import Image

    with Image.open(io.BytesIO(buffer)) as image:
        return np.asarray(image)


encoders: dict[str, Callable[[Any], bytes]] = {
    "bytes": encode_bytes,
    "utf8": encode_utf8,
    "int": encode_int,
    "i64": partial(encode_fixed, _i64),
    "u64": partial(encode_fixed, _u64),
    "f64": partial(encode_fixed, _f64),
    "msgpack": msgpack.packb,
    "array": encode_array,
    "tree": encode_tree,
    "jpg": partial(encode_image, format="JPEG", quality=95),
    "png": partial(encode_image, format="PNG"),
    "mp4": partial(video.encode_video, container="mp4", codec="h264"),
    "webm": partial(video.encode_video, container="webm", codec="vp9"),
}

decoders: dict[str, Callable[[bytes], Any]] = {
    "bytes": decode_bytes,
    "utf8": decode_utf8,
    "int": decode_int,
    "i64": partial(decode_fixed, _i64),
    "u64": partial(decode_fixed, _u64),
    "f64": partial(decode_fixed, _f64),
    "msgpack": msgpack.unpackb,
    "array": decode_array,
    "tree": decode_tree,
    "jpg": decode_image,
    "png": decode_image,
    "mp4": video.decode_video,
    "webm": video.decode_video,
}

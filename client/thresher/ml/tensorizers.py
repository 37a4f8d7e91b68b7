"""Tensorizers: a local file (or a metadata value) to a numpy array that any framework can take as is.

Files: images via Pillow (H×W×3 uint8, RGB), WAV audio via the stdlib ``wave`` module (frames ×
channels float32 in [-1, 1]), video via PyAV (T×H×W×3 uint8), anything else as its raw bytes (uint8).
``auto`` picks by the file name's extension, then by the file's first bytes (blobs have no name).
Metadata: ``numeric`` gives int64 for int fields, float32 for float fields (the frameworks' default
float, which models' weights use), bool for bool fields and int64 nanoseconds for datetimes.
"""

from __future__ import annotations

import mimetypes
import os
import wave
from collections.abc import Callable
from typing import Any

import numpy as np

from thresher.core.errors import InvalidArgumentError

Tensorizer = Callable[[Any], Any]


class TensorizerError(InvalidArgumentError):
    """A file or value that the chosen tensorizer cannot turn into an array."""


def image(path: str | os.PathLike[str]) -> np.ndarray:
    """An image file as an H×W×3 uint8 RGB array (every mode converted, so images batch together)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            return np.array(picture.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise TensorizerError(f"{os.fspath(path)} is not an image Pillow can read: {error}") from error


# PCM sample width in bytes -> the dtype it is read as and the scale that maps it onto [-1, 1].
_PCM: dict[int, tuple[np.dtype, float]] = {2: (np.dtype("<i2"), 2.0**15), 4: (np.dtype("<i4"), 2.0**31)}


def audio(path: str | os.PathLike[str]) -> np.ndarray:
    """A WAV file (8-, 16-, 24- or 32-bit PCM) as a frames × channels float32 array in [-1, 1]."""
    try:
        with wave.open(os.fspath(path), "rb") as reader:
            channels, width, count = reader.getnchannels(), reader.getsampwidth(), reader.getnframes()
            raw = reader.readframes(count)
    except (wave.Error, EOFError) as error:
        raise TensorizerError(f"{os.fspath(path)} is not a PCM WAV file: {error}") from error
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:  # 24-bit: widen each little-endian triple to int32 (top byte first keeps the sign)
        triples = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        values = (triples[:, 0] << 8 | triples[:, 1] << 16 | triples[:, 2] << 24) >> 8
        samples = values.astype(np.float32) / 2.0**23
    elif width in _PCM:
        dtype, scale = _PCM[width]
        samples = (np.frombuffer(raw, dtype).astype(np.float64) / scale).astype(np.float32)
    else:
        raise TensorizerError(f"{os.fspath(path)}: WAV sample width {width} bytes is not supported")
    return samples.reshape(-1, channels)


def video(path: str | os.PathLike[str]) -> np.ndarray:
    """Every frame of a video file's first video stream as a T×H×W×3 uint8 RGB array."""
    try:
        import av
    except ImportError as error:
        raise ImportError("the video tensorizer needs PyAV: pip install 'thresher[video]'") from error
    try:
        with av.open(os.fspath(path)) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except (av.error.FFmpegError, IndexError) as error:
        raise TensorizerError(f"{os.fspath(path)} is not a video PyAV can decode: {error}") from error
    if not frames:
        raise TensorizerError(f"{os.fspath(path)} holds no video frames")
    return np.stack(frames)


def raw_bytes(path: str | os.PathLike[str]) -> np.ndarray:
    """A file's bytes as a 1-D uint8 array."""
    with open(path, "rb") as handle:
        return np.fromfile(handle, np.uint8)


# Metadata field type -> the dtype ``numeric`` gives it (see the module docstring for float32).
NUMERIC_DTYPES = {
    "int": np.int64,
    "float": np.float32,
    "bool": np.bool_,
    "datetime": np.int64,
    "vector": np.float32,
}  # a vector becomes a 1-D float32 array


def numeric(value: Any, kind: str = "float") -> np.ndarray:
    """A metadata value as a 0-d array of the dtype for field type ``kind`` (datetimes: ns since the epoch)."""
    if kind == "datetime" and not isinstance(value, int | np.integer):
        value = np.datetime64(value.replace(tzinfo=None) if getattr(value, "tzinfo", None) else value, "ns")
        value = value.astype(np.int64)
    try:
        return np.asarray(value, dtype=NUMERIC_DTYPES[kind])
    except KeyError:
        raise TensorizerError(f"the numeric tensorizer takes int, float, bool or datetime fields, not {kind}") from None
    except (TypeError, ValueError) as error:
        raise TensorizerError(f"{value!r} is not a {kind} value: {error}") from error


TENSORIZERS: dict[str, Tensorizer] = {"image": image, "audio": audio, "video": video, "bytes": raw_bytes}

_MEDIA = {"image": "image", "audio": "audio", "video": "video"}
# First bytes of a file -> its kind, for files whose name says nothing (blobs are named by hash).
_SIGNATURES = [
    (0, b"\x89PNG", "image"),
    (0, b"\xff\xd8\xff", "image"),
    (0, b"GIF8", "image"),
    (0, b"BM", "image"),
    (8, b"WEBP", "image"),
    (8, b"WAVE", "audio"),
    (4, b"ftyp", "video"),
    (0, b"\x1a\x45\xdf\xa3", "video"),
    (8, b"AVI ", "video"),
]


def kind_of(path: str | os.PathLike[str], name: str = "") -> str:
    """``image``, ``audio``, ``video`` or ``bytes``: by ``name``'s extension (default the path's), else
    by the file's first bytes. WAV is the only audio read, so other audio types fall to ``bytes``."""
    kind, _ = mimetypes.guess_type(name or os.fspath(path), strict=False)
    major = (kind or "").partition("/")[0]
    if major == "audio" and kind not in ("audio/x-wav", "audio/wav", "audio/vnd.wave"):
        return "bytes"
    if major in _MEDIA:
        return _MEDIA[major]
    with open(path, "rb") as handle:
        head = handle.read(16)
    for offset, magic, found in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return found
    return "bytes"


def auto(path: str | os.PathLike[str], name: str = "") -> np.ndarray:
    """The tensorizer that fits the file's type (see :func:`kind_of`) applied to it."""
    array: np.ndarray = TENSORIZERS[kind_of(path, name)](path)
    return array

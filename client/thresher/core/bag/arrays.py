"""The ``array`` and ``tree`` formats: numpy arrays packed as msgpack ``[dtype.str, shape, bytes]``.

Encoding writes the same bytes as the ``granular`` package. Decoding finds the payload inside the
record and builds the array on top of it, so a large array is never copied (the array is
read-only and keeps the record alive).
"""

from __future__ import annotations

from typing import Any, cast

import msgpack
import numpy as np

from thresher.core.bag.bag_errors import DecodeError, EncodeError

TREE_MARK = "_"
_dtypes: dict[Any, np.dtype] = {}


def _dtype_code(dtype: np.dtype) -> Any:
    if dtype.hasobject:
        raise EncodeError(f"arrays of dtype {dtype} hold Python objects and cannot be stored as bytes")
    # A structured dtype's ``str`` is just ``|V<n>``: keep its fields with ``descr`` instead.
    return dtype.descr if dtype.names else dtype.str


def _contiguous(value: Any) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise EncodeError(f"expected a numpy array, got {type(value).__name__}")
    return value if value.flags.c_contiguous else np.ascontiguousarray(value)


def _raw(value: np.ndarray) -> memoryview:
    # A uint8 view exports a buffer for every dtype (datetime64 and structured ones do not).
    return value.reshape(-1).view(np.uint8).data


def _bin_header(size: int) -> bytes:
    if size < 1 << 8:
        return b"\xc4" + size.to_bytes(1, "big")
    if size < 1 << 16:
        return b"\xc5" + size.to_bytes(2, "big")
    if size < 1 << 32:
        return b"\xc6" + size.to_bytes(4, "big")
    raise EncodeError(f"an array of {size} bytes is larger than msgpack's 4 GiB limit")


def encode_array(value: np.ndarray) -> bytes:
    """``msgpack([dtype.str, shape, raw C-order bytes])``, without an intermediate copy of the data."""
    value = _contiguous(value)
    head = msgpack.packb(_dtype_code(value.dtype)) + msgpack.packb(value.shape)
    return b"".join((b"\x93", head, _bin_header(value.nbytes), _raw(value)))


def _as_dtype(code: Any) -> np.dtype:
    try:
        return _dtypes[code]
    except (KeyError, TypeError):
        pass
    if isinstance(code, list):
        structured: np.dtype = np.dtype(_descr(code))
        return structured
    dtype: np.dtype = np.dtype(code)
    if len(_dtypes) < 4096:  # bounded: a damaged dataset must not grow it without end
        _dtypes[code] = dtype
    return dtype


def _descr(fields: list[Any]) -> list[tuple[Any, ...]]:
    """A structured dtype's ``descr`` back from msgpack, which turned its tuples into lists."""
    out: list[tuple[Any, ...]] = []
    for name, dtype, *shape in fields:
        name = tuple(name) if isinstance(name, list) else name
        dtype = _descr(dtype) if isinstance(dtype, list) else dtype
        out.append((name, dtype, tuple(shape[0])) if shape else (name, dtype))
    return out


_UINT = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
_BIN = {0xC4: 1, 0xC5: 2, 0xC6: 4}


def _header(buffer: bytes) -> tuple[str, list[int], int] | None:
    """Parse the usual header (fixstr dtype, fixarray shape of uints, bin); None for anything else."""
    if buffer[0] != 0x93:
        return None
    n = buffer[1] - 0xA0
    if not 0 <= n < 32:
        return None
    pos = 2 + n
    code = buffer[2:pos].decode("ascii")
    ndim = buffer[pos] - 0x90
    if not 0 <= ndim < 16:
        return None
    pos += 1
    shape = []
    for _ in range(ndim):
        tag = buffer[pos]
        if tag < 0x80:
            shape.append(tag)
            pos += 1
            continue
        width = _UINT.get(tag)
        if width is None:
            return None
        shape.append(int.from_bytes(buffer[pos + 1 : pos + 1 + width], "big"))
        pos += 1 + width
    width = _BIN.get(buffer[pos])
    if width is None:
        return None
    size = int.from_bytes(buffer[pos + 1 : pos + 1 + width], "big")
    pos += 1 + width
    if pos + size != len(buffer):
        raise DecodeError(f"array record of {len(buffer)} bytes says its data is {size} bytes at {pos}")
    return code, shape, pos


def decode_array(buffer: bytes) -> np.ndarray:
    """The array stored in ``buffer``, a read-only view on it."""
    if not isinstance(buffer, bytes):
        buffer = bytes(buffer)
    header = _header(buffer) if len(buffer) >= 3 else None
    if header is None:
        code, shape, data = msgpack.unpackb(buffer)
        return _build(data, _as_dtype(code), shape, 0)
    code, shape, offset = header
    return _build(buffer, _as_dtype(code), shape, offset)


def _build(data: bytes, dtype: np.dtype, shape: list[int], offset: int) -> np.ndarray:
    count = 1
    for n in shape:
        count *= n
    if offset + count * dtype.itemsize != len(data):
        raise DecodeError(
            f"array of shape {tuple(shape)} and dtype {dtype} does not fit its {len(data) - offset} bytes"
        )
    return np.ndarray(shape, dtype, data, offset)


def _pack_leaf(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value = _contiguous(value)
        return [TREE_MARK, _dtype_code(value.dtype), value.shape, _raw(value)]
    if isinstance(value, np.generic):
        return value.item()
    raise EncodeError(f"the tree format cannot hold a {type(value).__name__}")


def encode_tree(value: Any) -> bytes:
    """Nested dicts, lists and scalars as msgpack, arrays as ``["_", dtype.str, shape, bytes]``."""
    return cast(bytes, msgpack.packb(value, default=_pack_leaf))  # msgpack has no type information


def _unpack_leaf(items: list[Any]) -> Any:
    if len(items) == 4 and items[0] == TREE_MARK and isinstance(items[3], bytes):
        _, code, shape, data = items
        return _build(data, _as_dtype(code), shape, 0)
    return items


def decode_tree(buffer: bytes) -> Any:
    """The tree stored in ``buffer``, with its array leaves rebuilt."""
    return msgpack.unpackb(buffer, list_hook=_unpack_leaf)

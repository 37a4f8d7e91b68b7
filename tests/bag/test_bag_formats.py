"""Encoders and decoders: round trips, granular's byte layout, zero-copy arrays, pickling."""

import pickle

import granular
import msgpack
import numpy as np
import pytest
from bag_samples import ANY_INTS, ARRAYS, assert_same

from thresher.bag import DecodeError, EncodeError, decoders, encoders


def roundtrip(fmt, value):
    return decoders[fmt](encoders[fmt](value))


@pytest.mark.parametrize("value", ANY_INTS + [2**127 - 1, -(2**127), np.int64(-5), np.uint8(200)])
def test_int_roundtrips_every_width_and_sign(value):
    assert roundtrip("int", value) == int(value)
    assert granular.decoders["int"](encoders["int"](value)) == int(value)


def test_int_uses_fewest_bytes_that_keep_the_sign():
    sizes = {0: 1, 127: 1, 128: 2, 255: 2, -128: 1, -129: 2, 32767: 2, 32768: 3, 2**63 - 1: 8, -(2**63): 8}
    assert {v: len(encoders["int"](v)) for v in sizes} == sizes


def test_int_matches_granular_bytes_where_granular_works():
    for value in [0, 1, 127, 256, 1000, 2**40 + 5]:
        assert encoders["int"](value) == granular.encoders["int"](value)


def test_int_rejects_what_cannot_read_back():
    with pytest.raises(EncodeError):
        encoders["int"](2**127)
    with pytest.raises(TypeError):
        encoders["int"](1.5)
    with pytest.raises(DecodeError):
        decoders["int"](b"")
    with pytest.raises(DecodeError):
        decoders["int"](bytes(17))


@pytest.mark.parametrize(
    "fmt,value",
    [("i64", -(2**63)), ("i64", 2**63 - 1), ("u64", 2**64 - 1), ("u64", 0), ("f64", -0.5), ("f64", float("inf"))],
)
def test_fixed_width_numbers(fmt, value):
    record = encoders[fmt](value)
    assert len(record) == 8 and roundtrip(fmt, value) == value
    if fmt != "f64":  # granular has no f64
        assert record == granular.encoders[fmt](value)


@pytest.mark.parametrize("fmt,value", [("i64", 2**63), ("u64", -1), ("f64", "x")])
def test_fixed_width_rejects_out_of_range(fmt, value):
    with pytest.raises(EncodeError):
        encoders[fmt](value)


def test_fixed_width_decoders_check_length():
    for fmt in ("i64", "u64", "f64"):
        with pytest.raises(DecodeError):
            decoders[fmt](bytes(7))


def test_text_bytes_msgpack():
    assert roundtrip("utf8", "héllo ✓") == "héllo ✓"
    assert roundtrip("utf8", "") == ""
    assert roundtrip("bytes", b"\x00x") == b"\x00x"
    assert encoders["bytes"](bytearray(b"ab")) == b"ab"
    with pytest.raises(EncodeError):
        encoders["bytes"]("not bytes")
    value = {"a": [1, 2.5, None, "s", b"b"], "n": -3}
    assert roundtrip("msgpack", value) == value


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype.str}{a.shape}")
def test_array_roundtrip_and_granular_layout(array):
    record = encoders["array"](array)
    assert record == msgpack.packb((array.dtype.str, array.shape, array.tobytes()))
    assert_same(decoders["array"](record), array)
    assert_same(granular.decoders["array"](record), array)


@pytest.mark.parametrize(
    "array",
    [
        np.arange(10, dtype=np.float64)[::2],  # not contiguous
        np.asfortranarray(np.arange(6).reshape(2, 3)),
        np.array(["2024-01-02T03:04:05"], dtype="datetime64[ns]"),
        np.array([(1, 2.5)], dtype=[("a", "<i4"), ("b", "<f8")]),
        np.zeros((70000,), dtype=np.uint8),  # bin32 header
        np.arange(2**16, dtype=np.uint32).reshape(256, 256),  # 2-byte dims
    ],
    ids=["strided", "fortran", "datetime", "structured", "bin32", "dims16"],
)
def test_array_any_dtype_and_layout(array):
    assert_same(roundtrip("array", array), np.ascontiguousarray(array))


def test_array_decodes_without_copying():
    record = encoders["array"](np.arange(1000, dtype=np.int32))
    array = decoders["array"](record)
    assert array.base is record or np.shares_memory(array, np.frombuffer(record, np.uint8))
    assert not array.flags.writeable


def test_array_rejects_objects_and_damage():
    with pytest.raises(EncodeError):
        encoders["array"](np.array([object()]))
    record = encoders["array"](np.arange(10, dtype=np.int32))
    with pytest.raises(DecodeError):
        decoders["array"](record[:-1])


def test_tree_roundtrip_and_granular_compatibility():
    tree = {"a": [np.arange(3), {"b": np.eye(2, dtype=np.float32)}], "c": 1, "d": ("x", 2), "e": np.float32(1.5)}
    want = {"a": [np.arange(3), {"b": np.eye(2, dtype=np.float32)}], "c": 1, "d": ["x", 2], "e": 1.5}
    record = encoders["tree"](tree)
    assert_same(decoders["tree"](record), want)
    plain = {"a": [np.arange(3)], "c": 1}
    assert encoders["tree"](plain) == granular.encoders["tree"](plain)
    assert_same(granular.decoders["tree"](encoders["tree"](plain)), plain)


def test_images():
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)
    assert_same(roundtrip("png", picture), picture)
    assert_same(roundtrip("png", picture[..., 0]), picture[..., 0])
    jpg = roundtrip("jpg", picture)
    assert jpg.shape == picture.shape and jpg.dtype == np.uint8
    assert_same(granular.decoders["jpg"](encoders["jpg"](picture)), decoders["jpg"](encoders["jpg"](picture)))


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_video(fmt):
    pytest.importorskip("av")
    frames = np.zeros((3, 16, 32, 3), dtype=np.uint8)
    frames[:, :, 16:] = 200
    record = encoders[fmt](frames)
    decoded = decoders[fmt](record)
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - frames).mean() < 8  # lossy, but the picture survives
    assert_same(granular.decoders[fmt](record), decoded)
    with pytest.raises(EncodeError):
        encoders[fmt](np.zeros((16, 32, 3), dtype=np.uint8))


def test_every_encoder_and_decoder_pickles():
    assert set(encoders) == set(decoders)
    assert {
        "bytes",
        "utf8",
        "int",
        "i64",
        "u64",
        "f64",
        "msgpack",
        "array",
        "tree",
        "jpg",
        "png",
        "mp4",
        "webm",
    } <= set(encoders)
    for table in (encoders, decoders):
        copies = pickle.loads(pickle.dumps(table))
        assert copies.keys() == table.keys()
    assert pickle.loads(pickle.dumps(encoders["i64"]))(5) == encoders["i64"](5)

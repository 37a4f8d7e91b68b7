"""Tensorizers on real files: PNG and JPEG via Pillow, WAV via wave, MP4 via PyAV; numeric dtypes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from tests.ml.conftest import image_bytes, video_bytes, wav_bytes
from thresher.ml import tensorizers as tz


def test_png_is_read_exactly_and_every_mode_becomes_rgb(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    (tmp_path / "a.png").write_bytes(image_bytes(pixels))
    out = tz.image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3) and np.array_equal(out, pixels)
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5)
    (tmp_path / "g.png").write_bytes(image_bytes(gray))
    assert np.array_equal(tz.image(tmp_path / "g.png"), np.repeat(gray[..., None], 3, axis=2))


def test_jpeg_decodes_close_to_the_original(tmp_path):
    pixels = np.full((16, 16, 3), (200, 30, 90), np.uint8)
    (tmp_path / "a.jpg").write_bytes(image_bytes(pixels, "JPEG"))
    out = tz.auto(tmp_path / "a.jpg")
    assert out.shape == (16, 16, 3) and np.abs(out.astype(int) - pixels).max() <= 8


def test_wav_becomes_float_frames_by_channels(tmp_path):
    samples = np.array([[0, -32768], [16384, 32767], [-16384, 0]], np.int16)
    (tmp_path / "a.wav").write_bytes(wav_bytes(samples))
    out = tz.auto(tmp_path / "a.wav")
    assert out.dtype == np.float32 and out.shape == (3, 2)
    assert np.allclose(out, samples / 32768.0)


def test_video_becomes_rgb_frames(tmp_path):
    frames = np.zeros((6, 32, 48, 3), np.uint8)
    for t in range(6):
        frames[t, :, : 8 * (t + 1)] = (250, 250, 250)  # a white bar growing frame by frame
    (tmp_path / "clip.mp4").write_bytes(video_bytes(frames))
    out = tz.auto(tmp_path / "clip.mp4")
    assert out.dtype == np.uint8 and out.shape == (6, 32, 48, 3)
    assert np.abs(out.astype(int) - frames).mean() < 10


def test_files_without_a_telling_name_are_recognised_by_their_bytes(tmp_path):
    blobs = {
        "image": image_bytes(np.zeros((2, 2, 3), np.uint8)),
        "audio": wav_bytes(np.zeros((4, 1), np.int16)),
        "video": video_bytes(np.zeros((2, 16, 16, 3), np.uint8)),
        "bytes": b"plain text",
    }
    for kind, content in blobs.items():
        (tmp_path / kind).write_bytes(content)
        assert tz.kind_of(tmp_path / kind) == kind
    assert tz.auto(tmp_path / "bytes").tolist() == list(b"plain text")


def test_unreadable_files_raise_a_tensorizer_error(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(tz.TensorizerError, match="not an image"):
        tz.image(tmp_path / "bad.png")
    with pytest.raises(tz.TensorizerError, match="not a PCM WAV"):
        tz.audio(tmp_path / "bad.png")
    with pytest.raises(tz.TensorizerError, match="not a video"):
        tz.video(tmp_path / "bad.png")


def test_numeric_dtypes_follow_the_field_type():
    assert tz.numeric(3, "int").dtype == np.int64
    assert tz.numeric(0.5, "float").dtype == np.float32
    assert tz.numeric(True, "bool").dtype == np.bool_
    instant = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    assert tz.numeric(instant, "datetime") == np.int64(int(instant.timestamp()) * 10**9)
    with pytest.raises(tz.TensorizerError):
        tz.numeric("x", "int")

"""Real media files (PNG, JPEG, WAV, MP4) and datasources over them, local and on the S3 endpoint."""

from __future__ import annotations

import io
import itertools
import os
import pathlib
import wave

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import thresher
from tests.downloads.conftest import indexed
from thresher.core.storage import open_storage

IMAGES = 10  # with batches of 4, the last batch is partial
SIZE = 16
_names = itertools.count()


def image_bytes(pixels: np.ndarray, format: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=format)
    return out.getvalue()


def labelled_pixels(i: int) -> np.ndarray:
    """A SIZE×SIZE RGB image whose brightness gives its label (i % 2) away, so a model can learn it."""
    rng = np.random.default_rng(i)
    base = 190 if i % 2 else 60
    return np.clip(base + rng.integers(-40, 40, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)


def wav_bytes(samples: np.ndarray, rate: int = 8000) -> bytes:
    """16-bit PCM WAV of int16 ``samples`` (frames × channels)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(samples.shape[1])
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(samples.astype("<i2").tobytes())
    return out.getvalue()


def video_bytes(frames: np.ndarray, fps: int = 10) -> bytes:
    """An MP4 (mpeg4 codec) of T×H×W×3 uint8 ``frames``, made with PyAV."""
    from thresher.core.bag.video import encode_video

    return encode_video(frames, "mp4", "mpeg4", fps)


def labelled_files() -> tuple[dict[str, bytes], pd.DataFrame]:
    files = {f"img/{i:02d}.png": image_bytes(labelled_pixels(i)) for i in range(IMAGES)}
    frame = pd.DataFrame(
        {
            "path": list(files),
            "label": [i % 2 for i in range(IMAGES)],
            "score": [i / 10 for i in range(IMAGES)],
            "flag": [i % 3 == 0 for i in range(IMAGES)],
        }
    )
    return files, frame


@pytest.fixture
def conn(local_services):
    connection = local_services.connect()
    yield connection
    thresher.disable_bucket_downloaders()


@pytest.fixture
def local_images(conn, namespace, tmp_path):
    """A scanned datasource over a local folder of labelled PNGs (label int, score float, flag bool)."""
    files, frame = labelled_files()
    folder = tmp_path / f"images{next(_names)}"
    for path, content in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(content)
    ds = thresher.datasources.get_or_create(namespace, folder.name, folder, connection=conn)
    ds.wait_until_ready(timeout=60, progress=False)
    ds.upload_metadata_from_dataframe(frame, create_missing=True)
    return ds


@pytest.fixture
def s3_images(conn, namespace, s3_bucket):
    """The same labelled PNGs in an S3 bucket: a remote source whose files go through the cache."""
    files, frame = labelled_files()
    storage = open_storage(f"s3://{s3_bucket}/data")
    for path, content in files.items():
        storage.write(path, content)
    return indexed(
        conn,
        namespace,
        f"s3://{s3_bucket}/data",
        list(files),
        extra={column: frame[column].tolist() for column in ("label", "score", "flag")},
    )


@pytest.fixture(params=["local", "s3"])
def images_source(request):
    """The labelled images, once from a local folder (read in place) and once from S3 (fetched)."""
    return request.getfixturevalue(f"{request.param}_images")


LIBSSL = pathlib.Path(__file__).resolve().parents[2] / ".cache" / "libssl1.1"


@pytest.fixture(scope="session")
def fo(tmp_path_factory):
    """FiftyOne with its database in a temporary folder; mongod is shut down at the end of the session."""
    pytest.importorskip("fiftyone", reason="needs the fiftyone extra")
    if not list(LIBSSL.glob("usr/lib/*/libssl.so.1.1")):
        pytest.skip(f"FiftyOne's mongod needs OpenSSL 1.1: run scripts/fetch_libssl11.sh (expects {LIBSSL})")
    patch = pytest.MonkeyPatch()
    patch.setenv("THRESHER_LIBSSL11_DIR", str(LIBSSL))
    patch.setenv("FIFTYONE_DATABASE_DIR", str(tmp_path_factory.mktemp("fiftyone-db")))
    patch.setenv("FIFTYONE_DO_NOT_TRACK", "true")
    patch.setenv("LD_LIBRARY_PATH", os.environ.get("LD_LIBRARY_PATH", ""))  # restored afterwards
    from thresher.ml import voxel51

    module = voxel51.fiftyone()
    yield module
    import fiftyone.core.odm.database as database

    database._disconnect()
    if database._db_service is not None:
        database._db_service.stop()
        database._db_service = None
    patch.undo()

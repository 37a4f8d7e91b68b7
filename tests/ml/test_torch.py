"""The PyTorch flavor: datasets and DataLoaders straight from a query, trained on for each strategy."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import torch

from tests.ml.conftest import IMAGES, SIZE, image_bytes, labelled_pixels, wav_bytes
from thresher import blob_cache
from thresher.core.errors import InvalidArgumentError
from thresher.ml import MissingValueError


def train_a_few_steps(loader) -> list[float]:
    """A tiny conv net trained on (image, label) batches for two epochs; returns the losses."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 2),
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(2):
        for images, labels in loader:
            assert images.dtype == torch.uint8 and images.shape[1:] == (SIZE, SIZE, 3)
            assert labels.dtype == torch.int64
            logits = model(images.permute(0, 3, 1, 2).float() / 255)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
    return losses


@pytest.mark.parametrize(
    "strategy",
    [
        "lazy",
        # The quick selection trains once; the other strategies share all but the fetching.
        pytest.param("background", marks=pytest.mark.slow(reason="another fetch strategy, same training")),
        pytest.param("preload", marks=pytest.mark.slow(reason="another fetch strategy, same training")),
    ],
)
def test_train_from_a_query_with_each_strategy(images_source, strategy, tmp_path):
    savedir = tmp_path / "cache"
    result = images_source[images_source["label"] >= 0].select("label").all()
    loader = result.as_ml_dataloader(
        "torch",
        metadata_columns=["label"],
        strategy=strategy,
        savedir=savedir,
        progress=False,
        batch_size=4,
        shuffle=True,
    )
    assert isinstance(loader, torch.utils.data.DataLoader) and len(loader) == 3
    losses = train_a_few_steps(loader)
    assert len(losses) == 6 and all(np.isfinite(losses))
    cached = sorted(p.relative_to(savedir).as_posix() for p in savedir.rglob("*") if p.is_file())
    if images_source.source.startswith("s3://"):  # fetched once into the cache, under the bucket prefix
        assert cached == sorted(f"data/{path}" for path in result.paths)
        assert not any(".thresher-partial-" in name for name in cached)
    else:  # a local folder is read in place
        assert cached == []


def test_items_hold_the_images_and_numeric_metadata_of_the_right_dtype(local_images):
    result = local_images.order_by("path").all()
    dataset = result.as_ml_dataset("torch", metadata_columns=["label", "score", "flag"])
    assert isinstance(dataset, torch.utils.data.Dataset) and len(dataset) == IMAGES
    image, label, score, flag = dataset[3]
    assert torch.equal(image, torch.from_numpy(labelled_pixels(3)))
    assert (label.dtype, score.dtype, flag.dtype) == (torch.int64, torch.float32, torch.bool)
    assert (label.item(), flag.item()) == (1, True) and score.item() == pytest.approx(0.3)
    assert torch.equal(dataset[-1][0], dataset[IMAGES - 1][0])
    with pytest.raises(IndexError):
        dataset[IMAGES]


def test_file_columns_from_blob_fields_and_path_fields(local_images, tmp_path):
    result_paths = local_images.order_by("path").all().paths
    thumbs = [image_bytes(np.full((4, 4, 3), i, np.uint8)) for i in range(IMAGES)]
    sound = wav_bytes(np.array([[1000], [-1000]], np.int16))
    local_images.upload_metadata_from_dataframe(
        pd.DataFrame(
            {
                "path": result_paths,
                "thumb": thumbs,
                "sound": [sound] * IMAGES,
                "twin": [result_paths[(i + 1) % IMAGES] for i in range(IMAGES)],
            }
        )
    )
    result = local_images.order_by("path").all()
    dataset = result.as_ml_dataset("torch", file_columns=["thumb", "twin", "sound"], strategy="preload", progress=False)
    thumb, twin, audio = dataset[2]
    assert torch.equal(thumb, torch.full((4, 4, 3), 2, dtype=torch.uint8))  # a blob, recognised as a PNG
    assert torch.equal(twin, torch.from_numpy(labelled_pixels(3)))  # the file the field names
    assert audio.dtype == torch.float32 and audio.shape == (2, 1)
    assert blob_cache.cached_path(hashlib.sha256(thumbs[2]).hexdigest()).exists()


def test_tensorizers_per_column_or_for_the_whole_item(local_images):
    result = local_images.order_by("path").all()
    raw = result.as_ml_dataset("torch", metadata_columns=["label"], tensorizers=["bytes", lambda v: v * 10])
    data, label = raw[1]
    assert data.dtype == torch.uint8 and bytes(data.numpy()[:4]) == b"\x89PNG" and label == 10
    whole = result.as_ml_dataset(
        "torch", metadata_columns=["label"], tensorizers=lambda item: (item["path"].name, item["label"])
    )
    assert whole[1] == (result.paths[1].rsplit("/", 1)[-1], 1)


def test_misuse_fails_with_specific_errors(local_images):
    result = local_images.order_by("path").all()
    with pytest.raises(InvalidArgumentError, match="not a column of this result"):
        result.as_ml_dataset("torch", metadata_columns=["nope"])
    with pytest.raises(InvalidArgumentError, match="one per column"):
        result.as_ml_dataset("torch", metadata_columns=["label"], tensorizers=["image"])
    with pytest.raises(InvalidArgumentError, match="strategy"):
        result.as_ml_dataset("torch", strategy="eager")
    with pytest.raises(InvalidArgumentError, match="unknown ML flavor"):
        result.as_ml_dataset("jax")
    with pytest.raises(InvalidArgumentError, match="is a int field"):
        result.as_ml_dataset("torch", file_columns=["label"])
    local_images.upload_metadata_from_dataframe(pd.DataFrame({"path": [result.paths[0]], "rare": [1]}))
    sparse = local_images.order_by("path").all().as_ml_dataset("torch", metadata_columns=["rare"])
    assert sparse[0][1].item() == 1
    with pytest.raises(MissingValueError, match="no value in int column 'rare'"):
        sparse[1]


@pytest.mark.slow  # two DataLoader worker processes, each importing torch
def test_worker_processes_read_the_cache(s3_images, tmp_path):
    loader = s3_images.all().as_ml_dataloader(
        "torch", metadata_columns=["label"], savedir=tmp_path, progress=False, batch_size=5, num_workers=2
    )
    batches = list(loader)
    assert [len(labels) for _, labels in batches] == [5, 5]
    assert len([p for p in tmp_path.rglob("*.png")]) == IMAGES

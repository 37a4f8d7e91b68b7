"""thresher.ml.embed: a tiny random CNN's outputs over a result's images, written back as a vector field."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.ml.conftest import IMAGES, labelled_pixels
from thresher.core.errors import InvalidArgumentError
from thresher.core.types import FieldType
from thresher.ml import embed


class CountingCNN(torch.nn.Module):
    """A randomly initialised conv net giving 8-d outputs; counts the images it sees."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(16, 8),
        )
        self.seen = 0

    def forward(self, x):
        self.seen += len(x)
        return self.net(x)


def expected(model: CountingCNN, index: int) -> np.ndarray:
    image = torch.from_numpy(labelled_pixels(index)).permute(2, 0, 1).float()[None] / 255.0
    with torch.no_grad():
        return model.net(image).numpy()[0]


def test_embed_writes_vectors_resumably(local_images):
    model = CountingCNN()
    first_half = local_images.order_by("path").limit(4).all()
    assert embed(first_half, model, field="emb", batch=3, progress=False) == 4
    assert model.seen == 4
    everything = local_images.order_by("path").all()
    # A rerun skips what is done: only the other six are run through the model.
    assert embed(everything, model, field="emb", batch=4, write_every=2, progress=False) == IMAGES - 4
    assert model.seen == IMAGES
    assert embed(everything, model, field="emb", progress=False) == 0
    assert local_images.fields["emb"] is FieldType.VECTOR
    stored = local_images.order_by("path").all().vectors("emb")
    assert stored.shape == (IMAGES, 8)
    for i in range(IMAGES):
        np.testing.assert_allclose(stored[i], expected(model, i), rtol=1e-5, atol=1e-6)
    # overwrite runs everything again; the neighbours of an image include itself first.
    assert embed(everything, model, field="emb", overwrite=True, progress=False) == IMAGES
    assert local_images.nearest("emb", path="img/03.png", k=1, metric="l2").paths == ["img/03.png"]


def test_embed_refuses_a_field_of_another_type(local_images):
    with pytest.raises(InvalidArgumentError, match="field 'label' has type int"):
        embed(local_images.all(), CountingCNN(), field="label", progress=False)
    with pytest.raises(InvalidArgumentError, match="batch"):
        embed(local_images.all(), CountingCNN(), field="emb2", batch=0, progress=False)


def test_a_vector_field_is_a_metadata_column_of_torch_datasets(local_images):
    paths = local_images.order_by("path").all().paths
    vectors = np.arange(IMAGES * 3, dtype=np.float32).reshape(IMAGES, 3)
    local_images.upload_vectors("emb", paths, vectors)
    loader = (
        local_images.order_by("path")
        .all()
        .as_ml_dataloader("torch", file_columns=[], metadata_columns=["emb"], batch_size=4)
    )
    batches = list(loader)
    assert batches[0].dtype == torch.float32 and batches[0].shape == (4, 3)
    np.testing.assert_array_equal(torch.cat(batches).numpy(), vectors)

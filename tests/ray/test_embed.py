"""embed_on_ray: a torch model mapped over a result's images by a Ray actor pool, vectors written back."""

from __future__ import annotations

import numpy as np
import pytest

from thresher.ml import ray_embed

torch = pytest.importorskip("torch")


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))


@pytest.mark.slow
def test_embeddings_on_an_actor_pool_are_the_models_outputs_written_back(ray_cluster, images):
    ds, folder = images(20)
    model = _model()
    result = ds.all()
    response = ray_embed.embed_on_ray(result, model, field="embedding", batch_size=6, num_actors=1)
    assert response.datapoints_written == 20

    stored = ds.all()
    vectors = stored.vectors("embedding")
    assert vectors.shape == (20, 4) and vectors.dtype == np.float32
    with torch.no_grad():
        for path, got in zip(stored.paths, vectors):
            expected = model(ray_embed.image_tensor((folder / path).read_bytes())[None]).numpy()[0]
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_embed_with_the_ray_engine_writes_a_vector_field(ray_cluster, images):
    from thresher.ml import embed

    ds, _ = images(8)
    response = embed(ds.all(), _model(), field="features", batch=4, engine="ray", num_actors=1)
    assert response.datapoints_written == 8
    assert ds[ds["features"].is_not_null()].count() == 8

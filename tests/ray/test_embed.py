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

    stored = ds.all().get_blob_fields("embedding", load_into_memory=True, progress=False)
    with torch.no_grad():
        for entry in stored:
            expected = model(ray_embed.image_tensor((folder / entry.path).read_bytes())[None]).numpy()[0]
            got = np.frombuffer(entry["embedding"], "<f4")
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)

"""The torch and TensorFlow views of a loader."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from thresher.loader import Loader, LoaderError, tensorflow_signature, to_tensorflow, to_torch
from thresher.sources import Epochs

from .fakes import Points, Ragged


def test_importing_the_loader_imports_no_framework():
    code = (
        "import sys, thresher.loader, thresher.sources;"
        "print(sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))"
    )
    command = [sys.executable, "-c", code]
    output = subprocess.run(command, capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "[]"


def test_torch_view_gives_tensors_over_the_same_memory():
    torch = pytest.importorskip("torch")
    loader = Loader(Points(10), 4, workers=2)
    view = to_torch(loader)
    assert isinstance(view, torch.utils.data.IterableDataset)
    assert len(view) == 3
    batches = list(torch.utils.data.DataLoader(view, batch_size=None))
    loader.close()
    assert [b["label"].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0]["image"].dtype == torch.uint8 and batches[0]["image"].shape == (4, 4, 3)
    assert batches[0]["name"] == ["p0", "p1", "p2", "p3"]
    with pytest.raises(LoaderError, match="num_workers=0"):
        pickle.dumps(view)


def test_torch_tensors_keep_the_shared_memory_alive():
    pytest.importorskip("torch")
    with Loader(Epochs(Points(30), shuffle=False), 4, workers=2, prefetch=2) as loader:
        view = iter(to_torch(loader))
        kept = [next(view)["image"] for _ in range(12)]
    for index, images in enumerate(kept):
        assert images[:, 0, 0].tolist() == [(4 * index + i) % 30 for i in range(4)]


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def test_tensorflow_signature_from_the_spec(tf):
    finite = tensorflow_signature(Loader(Points(10), 4, workers=0))
    assert finite["image"] == tf.TensorSpec((None, 4, 3), tf.uint8, name="image")
    assert finite["label"] == tf.TensorSpec((None,), tf.int64, name="label")
    assert finite["score"].dtype == tf.float64
    assert finite["name"] == tf.TensorSpec((None,), tf.string, name="name")
    # Every batch is full when the source is endless or the short one is dropped.
    endless = tensorflow_signature(Loader(Epochs(Points(10)), 4, workers=0))
    assert endless["image"].shape == (4, 4, 3)
    dropped = tensorflow_signature(Loader(Points(10), 4, workers=0, drop_remainder=True))
    assert dropped["label"].shape == (4,)
    with pytest.raises(LoaderError, match="output_signature"):
        tensorflow_signature(Loader([{"tree": {"a": 1}}], 1, workers=0))


def test_tensorflow_dataset_yields_the_loaders_batches(tf):
    with Loader(Points(10), 4, workers=2) as loader:
        batches = list(to_tensorflow(loader))
    assert [b["label"].numpy().tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    np.testing.assert_array_equal(batches[1]["image"].numpy()[:, 0, 0], [4, 5, 6, 7])
    assert batches[2]["name"].numpy().tolist() == [b"p8", b"p9"]


def test_tensorflow_ragged_keys_by_explicit_signature(tf):
    signature = {"tokens": tf.RaggedTensorSpec((None, None), tf.int32, ragged_rank=1)}
    with Loader(Ragged(), 5, workers=0) as loader:
        first = next(iter(to_tensorflow(loader, signature)))
    assert list(first) == ["tokens"]
    assert first["tokens"].to_list() == [[], [0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]


def test_torch_view_is_stateful_like_the_loader():
    pytest.importorskip("torch")
    from torch.distributed.checkpoint.stateful import Stateful

    view = to_torch(Loader(Epochs(Points(30), seed=5), 4, workers=0))
    iterator = iter(view)
    next(iterator), next(iterator)
    assert isinstance(view, Stateful) and isinstance(view.loader, Stateful)
    state = view.state_dict()
    assert state == {"step": 8, "epoch": 0}
    expected = next(iterator)["label"].tolist()
    other = to_torch(Loader(Epochs(Points(30), seed=5), 4, workers=0))
    other.load_state_dict(state)
    assert next(iter(other))["label"].tolist() == expected


def test_torchdata_stateful_dataloader_saves_and_resumes_the_loader():
    pytest.importorskip("torch")
    stateful = pytest.importorskip("torchdata.stateful_dataloader")

    def dataloader():
        view = to_torch(Loader(Epochs(Points(30), seed=5), 4, workers=0))
        return stateful.StatefulDataLoader(view, batch_size=None, num_workers=0)

    first = dataloader()
    iterator = iter(first)
    next(iterator), next(iterator)
    state = first.state_dict()
    assert state["dataset_state"] == {"step": 8, "epoch": 0}
    expected = [next(iterator)["label"].tolist() for _ in range(2)]
    resumed = dataloader()
    resumed.load_state_dict(state)
    iterator = iter(resumed)
    assert [next(iterator)["label"].tolist() for _ in range(2)] == expected

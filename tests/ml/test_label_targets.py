"""Annotation fields as training targets: torch tensors in torchvision's layout, TensorFlow ragged tensors."""

from __future__ import annotations

import numpy as np
import pytest

import thresher
from tests.ml.conftest import image_bytes
from thresher.core import labels as L

SIZES = {"a.png": (40, 20), "b.png": (10, 10), "c.png": (8, 4)}
VALUES = {
    "a.png": L.Detections([L.Detection("person", (0.25, 0.5, 0.5, 0.5), 0.9), L.Detection("car", (0, 0, 0.1, 0.2))]),
    "b.png": L.Detections([]),
    "c.png": L.Detections([L.Detection("car", (0.5, 0.5, 0.5, 0.5), 0.5)]),
}


@pytest.fixture
def labelled(conn, namespace, tmp_path):
    folder = tmp_path / "targets"
    folder.mkdir()
    for path, (width, height) in SIZES.items():
        (folder / path).write_bytes(image_bytes(np.zeros((height, width, 3), np.uint8)))
    ds = thresher.datasources.get_or_create(namespace, "targets", folder, connection=conn)
    ds.wait_until_ready(timeout=60, progress=False)
    mask = image_bytes(np.array([[0, 1], [2, 1]], np.uint8))
    with ds.metadata_context() as ctx:
        for path, value in VALUES.items():
            ctx.update_metadata(
                path,
                {
                    "gt": value,
                    "kind": L.Classification("street" if path != "b.png" else "field"),
                    "seg": L.Segmentation(mask, ("bg", "road", "car")),
                },
            )
    return ds


def test_torch_items_are_absolute_xyxy_boxes_with_stable_class_numbers(labelled):
    import torch

    from thresher.ml.torch_data import detection_collate

    result = labelled.order_by("path").all()
    dataset = result.as_ml_dataset("torch", metadata_columns=["gt", "kind"])
    assert dataset.thresher_items.class_maps == {"gt": {"car": 1, "person": 2}, "kind": {"field": 1, "street": 2}}
    image, target, kind = dataset[0]
    assert image.shape == (20, 40, 3)
    assert torch.equal(target["boxes"], torch.tensor([[10.0, 10.0, 30.0, 20.0], [0.0, 0.0, 4.0, 4.0]]))
    assert target["labels"].dtype == torch.int64 and target["labels"].tolist() == [2, 1]
    assert target["scores"][0].item() == pytest.approx(0.9) and torch.isnan(target["scores"][1])
    assert kind.item() == 2
    empty = dataset[1][1]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)
    loader = result.as_ml_dataloader(dataset, batch_size=3, collate_fn=detection_collate)
    images, targets, kinds = next(iter(loader))
    assert [len(t["labels"]) for t in targets] == [2, 0, 1]
    mapped = result.as_ml_dataset("torch", metadata_columns=["gt"], class_maps={"gt": {"car": 7, "person": 3}})
    assert mapped[0][1]["labels"].tolist() == [3, 7]


def test_segmentation_masks_come_from_the_blob_store(labelled):
    dataset = labelled.order_by("path").all().as_ml_dataset("torch", file_columns=["seg"])
    assert dataset[0].tolist() == [[0, 1], [2, 1]]


def test_tensorflow_batches_hold_ragged_targets(labelled):
    import tensorflow as tf

    result = labelled.order_by("path").all()
    batches = result.as_ml_dataloader("tensorflow", file_columns=[], metadata_columns=["gt"], batch_size=3)
    (targets,) = (batches[0],) if isinstance(batches[0], dict) else batches[0]
    assert isinstance(targets["boxes"], tf.RaggedTensor)
    assert targets["labels"].row_lengths().numpy().tolist() == [2, 0, 1]
    assert targets["boxes"][2].numpy().tolist() == [[4.0, 2.0, 8.0, 4.0]]
    dataset = result.as_ml_dataset("tensorflow", file_columns=[], metadata_columns=["gt"])
    batch = next(iter(dataset.ragged_batch(3)))
    assert isinstance(batch["boxes"], tf.RaggedTensor) and batch["boxes"].shape[0] == 3


def test_fiftyone_dataset_holds_each_kind_as_its_label_class(fo, labelled):
    with labelled.metadata_context() as ctx:
        ctx.update_metadata(
            "a.png",
            {
                "lines": L.Polylines(
                    [
                        L.Polyline(
                            "road", ((0.0, 0.0), (1.0, 1.0)), confidence=0.5, instance_id=4, attributes={"lane": 2}
                        )
                    ]
                ),
                "pose": L.Keypoints([L.Keypoint("person", ((0.5, 0.25),))]),
            },
        )
    dataset = labelled.order_by("path").all().to_voxel51_dataset(progress=False)
    sample = dataset.match(fo.ViewField("thresher_path") == "a.png").first()
    assert isinstance(sample.gt, fo.Detections) and isinstance(sample.kind, fo.Classification)
    assert [(d.label, d.bounding_box, d.confidence) for d in sample.gt.detections] == [
        ("person", [0.25, 0.5, 0.5, 0.5], 0.9),
        ("car", [0.0, 0.0, 0.1, 0.2], None),
    ]
    assert sample.kind.label == "street"
    (line,) = sample.lines.polylines
    assert (line.label, line.points, line.closed, line.index, line["lane"]) == (
        "road",
        [[[0.0, 0.0], [1.0, 1.0]]],
        False,
        4,
        2,
    )
    assert sample.pose.keypoints[0].points == [[0.5, 0.25]]
    assert isinstance(sample.seg, fo.Segmentation) and sample.seg.get_mask().tolist() == [[0, 1], [2, 1]]
    assert dataset.mask_targets["seg"] == {0: "bg", 1: "road", 2: "car"}
    assert len(dataset.filter_labels("gt", fo.ViewField("label") == "car")) == 2


def test_bag_export_keeps_annotations_losslessly(labelled, tmp_path):
    from thresher.bag import ShardedDatasetReader, decoders

    result = labelled.order_by("path").all()
    manifest = result.export(tmp_path / "bag", columns=["gt", "kind", "seg"], files_too=False, progress=False)
    assert manifest["field_types"] == {
        "gt": "annotation:detections",
        "kind": "annotation:classification",
        "seg": "annotation:segmentation",
    }
    with ShardedDatasetReader(tmp_path / "bag", decoders) as reader:
        for i, entry in enumerate(result):
            for key in ("gt", "kind", "seg"):
                kind = manifest["field_types"][key].partition(":")[2]
                assert L.from_plain(kind, reader[i][key]) == entry[key]

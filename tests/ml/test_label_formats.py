"""Annotation formats: export then import gives the same labels, and readers nobody here wrote load the exports."""

from __future__ import annotations

import json

import numpy as np
import pytest

import thresher
from tests.ml.conftest import image_bytes
from thresher.core import labels as L

# Image sizes and boxes on each image's pixel grid, so pixel formats hold them exactly.
SIZES = {"img/a.png": (64, 48), "img/b.png": (40, 50), "img/sub/c.png": (32, 32)}


def _box(path: str, x: int, y: int, w: int, h: int) -> tuple[float, float, float, float]:
    width, height = SIZES[path]
    return (x / width, y / height, w / width, h / height)


def _points(path: str, *pairs: tuple[int, int]) -> tuple[tuple[float, float], ...]:
    width, height = SIZES[path]
    return tuple((x / width, y / height) for x, y in pairs)


DETECTIONS = {
    "img/a.png": L.Detections(
        [
            L.Detection("car", _box("img/a.png", 1, 2, 30, 20), 0.5),
            L.Detection("person", _box("img/a.png", 40, 0, 24, 48)),
        ]
    ),
    "img/b.png": L.Detections([L.Detection("car", _box("img/b.png", 0, 0, 40, 50), 0.25, instance_id=3)]),
    "img/sub/c.png": L.Detections([]),
}
POLYGONS = {
    "img/a.png": L.Polylines([L.Polyline("road", _points("img/a.png", (0, 0), (32, 0), (16, 24)), True, True)]),
    "img/b.png": L.Polylines(
        [L.Polyline("car", _points("img/b.png", (1, 1), (9, 1), (9, 9), (1, 9)), True, True, confidence=0.75)]
    ),
}

WITHOUT_CONFIDENCE = {  # CVAT holds no confidences or instance ids
    "img/a.png": L.Detections(
        [
            L.Detection("car", _box("img/a.png", 1, 2, 30, 20), attributes={"occluded": True}),
            L.Detection("person", _box("img/a.png", 40, 0, 24, 48), attributes={"color": "red"}),
        ]
    ),
    "img/sub/c.png": L.Detections([]),
}
OPEN_AND_CLOSED = {
    "img/a.png": L.Polylines(
        [
            L.Polyline("road", _points("img/a.png", (0, 0), (32, 0), (16, 24)), True, True),
            L.Polyline("lane", _points("img/a.png", (1, 1), (5, 7))),
        ]
    ),
}
KEYPOINTS = {"img/b.png": L.Keypoints([L.Keypoint("person", _points("img/b.png", (3, 4), (10, 20)))])}
CLASSES = {"img/a.png": L.Classification("street"), "img/b.png": L.Classification("field", 0.5)}


@pytest.fixture
def images(conn, namespace, tmp_path):
    folder = tmp_path / "images"
    for path, (width, height) in SIZES.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(image_bytes(np.zeros((height, width, 3), np.uint8)))
    ds = thresher.datasources.get_or_create(namespace, "labelled", folder, connection=conn)
    return ds.wait_until_ready(timeout=60, progress=False)


def _write(ds, field: str, values: dict) -> None:
    with ds.metadata_context() as ctx:
        for path, value in values.items():
            ctx.update_metadata(path, {field: value})


def _read(ds, field: str) -> dict:
    result = ds.all()
    return {p: v for p, v in zip(result.paths, result.labels(field)) if v is not None}


@pytest.mark.parametrize(
    "format_name, values",
    [
        ("coco", DETECTIONS),
        ("coco", POLYGONS),
        ("voc", DETECTIONS),
        ("cvat", WITHOUT_CONFIDENCE),
        ("cvat", OPEN_AND_CLOSED),
        ("cvat", KEYPOINTS),
        ("cvat", {p: L.Classification(c.label) for p, c in CLASSES.items()}),
        (
            "labelstudio",
            DETECTIONS | {"img/b.png": L.Detections([L.Detection("car", _box("img/b.png", 0, 0, 40, 50), 0.25)])},
        ),
        ("labelstudio", POLYGONS),
        ("labelstudio", CLASSES),
    ],
)
def test_pixel_formats_round_trip_exactly(images, tmp_path, format_name, values):
    _write(images, "gt", values)
    target = tmp_path / "export"
    images.all().export_annotations(format_name, target, field="gt")
    kind = next(iter(values.values())).kind
    report = images.import_annotations(format_name, target, field="back", kind=kind)
    assert report.unmatched_files == [] and report.matched == len(values)
    assert _read(images, "back") == values


def _close(a, b) -> bool:
    return (
        type(a) is type(b)
        and len(a) == len(b)
        and all(
            x.label == y.label
            and x.confidence == y.confidence
            and np.allclose(
                np.array(getattr(x, "box", None) or x.points, float),
                np.array(getattr(y, "box", None) or y.points, float),
                atol=1e-12,
                rtol=0,
            )
            for x, y in zip(a, b)
        )
    )


@pytest.mark.parametrize("values", [DETECTIONS, POLYGONS])
def test_yolo_round_trips_to_float_precision(images, tmp_path, values):
    _write(images, "gt", values)
    target = tmp_path / "yolo"
    images.all().export_annotations("yolo", target)
    report = images.import_annotations("yolo", target, field="back")
    assert report.matched == len(values) and report.unmatched_files == []
    got = _read(images, "back")
    assert set(got) == set(values) and all(_close(got[p], values[p]) for p in values)


def test_import_reports_unmatched_files_and_writes_the_rest(images, tmp_path):
    document = {
        "images": [
            {"id": 1, "file_name": "elsewhere/a.png", "width": 64, "height": 48},
            {"id": 2, "file_name": "missing.png", "width": 10, "height": 10},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 7,
                "bbox": [0, 0, 32, 24],
                "iscrowd": 0,
                "area": 768,
                "occluded": True,
            }
        ],
        "categories": [{"id": 7, "name": "dog"}],
    }
    (tmp_path / "in.json").write_text(json.dumps(document))
    report = images.import_annotations("coco", tmp_path / "in.json", field="gt")
    assert report.matched == 1 and report.unmatched_files == ["missing.png"]
    assert _read(images, "gt") == {
        "img/a.png": L.Detections([L.Detection("dog", (0.0, 0.0, 0.5, 0.5), attributes={"occluded": True})])
    }


def test_coco_export_loads_in_pycocotools(images, tmp_path):
    coco_module = pytest.importorskip("pycocotools.coco")
    _write(images, "gt", DETECTIONS)
    (path,) = images.all().export_annotations("coco", tmp_path / "gt.json")
    coco = coco_module.COCO(path)
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    by_file = {img["file_name"]: img["id"] for img in coco.loadImgs(coco.getImgIds())}
    boxes = [(names[a["category_id"]], a["bbox"]) for a in coco.loadAnns(coco.getAnnIds(imgIds=[by_file["img/a.png"]]))]
    assert boxes == [("car", [1, 2, 30, 20]), ("person", [40, 0, 24, 48])]


@pytest.mark.parametrize("format_name", ["coco", "voc", "yolo", "cvat"])
def test_fiftyone_importers_load_the_same_objects(fo, images, tmp_path, format_name):
    _write(images, "gt", DETECTIONS)
    target = tmp_path / format_name
    images.all().export_annotations(
        format_name, target / ("labels.json" if format_name == "coco" else ""), copy_images=False
    )
    images.all().download_files(target / "images", keep_source_prefix=False, progress=False)
    if format_name == "coco":
        dataset = fo.Dataset.from_dir(
            dataset_type=fo.types.COCODetectionDataset,
            data_path=str(target / "images"),
            labels_path=str(target / "labels.json"),
            label_types="detections",
            label_field="gt",
        )
        field = "gt"
    elif format_name == "voc":
        dataset = fo.Dataset.from_dir(
            dataset_type=fo.types.VOCDetectionDataset,
            data_path=str(target / "images"),
            labels_path=str(target),
            label_field="gt",
        )
        field = "gt"
    elif format_name == "cvat":
        dataset = fo.Dataset.from_dir(
            dataset_type=fo.types.CVATImageDataset,
            data_path=str(target / "images"),
            labels_path=str(target / "annotations.xml"),
            label_field="gt",
        )
        field = "gt_detections" if "gt_detections" in dataset.get_field_schema() else "gt"
    else:
        dataset = fo.Dataset.from_dir(
            dataset_dir=str(target),
            dataset_type=fo.types.YOLOv5Dataset,
            split="val",
            yaml_path=str(target / "data.yaml"),
            label_field="gt",
        )
        field = "gt"
    loaded = {}
    root = str(target / "images") + "/"
    for sample in dataset:
        detections = sample[field].detections if sample[field] is not None else []
        loaded[sample.filepath.removeprefix(root)] = sorted(
            (d.label, tuple(round(v, 9) for v in d.bounding_box)) for d in detections
        )
    expected = {p: sorted((o.label, tuple(round(v, 9) for v in o.box)) for o in v) for p, v in DETECTIONS.items()}
    assert {p: v for p, v in loaded.items() if v or p in expected} == expected


def test_import_from_and_export_to_an_s3_bucket(images, s3_bucket):
    _write(images, "gt", DETECTIONS)
    images.all().export_annotations("voc", f"s3://{s3_bucket}/voc")
    images.all().export_annotations("coco", f"s3://{s3_bucket}/coco/instances.json")
    assert images.import_annotations("voc", f"s3://{s3_bucket}/voc", field="from_voc").matched == len(DETECTIONS)
    report = images.import_annotations("coco", f"s3://{s3_bucket}/coco/instances.json", field="from_coco")
    assert report.matched == len(DETECTIONS)
    assert _read(images, "from_voc") == _read(images, "from_coco") == DETECTIONS

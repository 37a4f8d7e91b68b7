"""Annotations at scale: import a synthetic COCO file and query its objects, against FiftyOne on the same data.

The COCO file has ``--images`` images (default 100k) with ``--boxes`` boxes each on average (default
10: 1M boxes). Thresher: ``ds.import_annotations("coco", ...)`` into a datasource whose datapoints
exist already (as after a scan), then the four object queries of the README counted by the service.
FiftyOne: ``Dataset.from_dir(COCODetectionDataset)`` and the same queries with ``match``/``filter_labels``
counted by MongoDB. Targets: import >= 5x faster, queries >= 10x faster.

    python benchmarks/labels.py [--images 100000] [--boxes 10] [--skip-fiftyone]

FiftyOne's importer writes about 30 ms an image here (2 loaded cores), an hour for the full file: compare
at ``--images 20000`` and run the full scale with ``--skip-fiftyone``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np
from service_process import ServiceProcess, empty_datasource

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLASSES = ["car", "person", "bicycle", "dog", "truck", "bus", "cat", "traffic light"]


def make_coco(images: int, boxes: int, seed: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(boxes, images)
    total = int(counts.sum())
    image_ids = np.repeat(np.arange(1, images + 1), counts)
    w = rng.integers(4, 200, total)
    h = rng.integers(4, 200, total)
    x = rng.integers(0, 640 - 200, total)
    y = rng.integers(0, 480 - 200, total)
    categories = rng.integers(1, len(CLASSES) + 1, total)
    scores = rng.random(total).round(3)
    annotations = [
        {
            "id": i + 1,
            "image_id": int(image_ids[i]),
            "category_id": int(categories[i]),
            "bbox": [int(x[i]), int(y[i]), int(w[i]), int(h[i])],
            "area": int(w[i] * h[i]),
            "iscrowd": 0,
            "segmentation": [],
            "score": float(scores[i]),
        }
        for i in range(total)
    ]
    return {
        "images": [
            {"id": i, "file_name": f"img/{i:07d}.jpg", "width": 640, "height": 480} for i in range(1, images + 1)
        ],
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(CLASSES)],
    }


def best_of(repeats: int, run) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


def thresher_side(coco_path: pathlib.Path, images: int) -> tuple[float, dict[str, tuple[float, int]]]:
    import pandas as pd

    ds = empty_datasource("bench/labels", "coco")
    ds.upload_metadata_from_dataframe(
        pd.DataFrame({"path": [f"img/{i:07d}.jpg" for i in range(1, images + 1)], "width": 640, "height": 480}),
        path_column="path",
        create_missing=True,
    )  # the datapoints a scan would have made
    started = time.perf_counter()
    report = ds.import_annotations("coco", coco_path, field="gt")
    import_s = time.perf_counter() - started
    assert report.matched == images and not report.unmatched_files, report
    gt = ds["gt"]
    queries = {
        "labels.contains('car')": gt.labels.contains("car"),
        "count('car') >= 3": gt.count("car") >= 3,
        "count() == 0": gt.count() == 0,
        "max_confidence('person') < 0.5": gt.max_confidence("person") < 0.5,
    }
    return import_s, {name: best_of(3, lambda q=q: ds[q].count()) for name, q in queries.items()}


def fiftyone_side(coco_path: pathlib.Path, data_dir: pathlib.Path) -> tuple[float, dict[str, tuple[float, int]]]:
    os.environ.setdefault("THRESHER_LIBSSL11_DIR", str(ROOT / ".cache" / "libssl1.1"))
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    from thresher.ml import voxel51

    fo = voxel51.fiftyone()
    from fiftyone import ViewField as F

    started = time.perf_counter()
    dataset = fo.Dataset.from_dir(
        dataset_type=fo.types.COCODetectionDataset,
        data_path=str(data_dir),
        labels_path=str(coco_path),
        label_types="detections",
        label_field="gt",
        progress=False,
    )
    import_s = time.perf_counter() - started
    detections = F("gt.detections")
    cars, people = detections.filter(F("label") == "car"), detections.filter(F("label") == "person")
    queries = {
        "labels.contains('car')": lambda: dataset.match(cars.length() > 0).count(),
        "count('car') >= 3": lambda: dataset.match(cars.length() >= 3).count(),
        "count() == 0": lambda: dataset.match(detections.length() == 0).count(),
        # MongoDB's max of no values is null, and null < 0.5: so ask for a person first.
        "max_confidence('person') < 0.5": lambda: dataset.match(
            (people.length() > 0) & (people.map(F("confidence")).max() < 0.5)
        ).count(),
    }
    measured = {name: best_of(3, run) for name, run in queries.items()}
    dataset.delete()
    return import_s, measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--boxes", type=int, default=10, help="boxes per image on average")
    parser.add_argument("--skip-fiftyone", action="store_true")
    args = parser.parse_args()
    coco = make_coco(args.images, args.boxes)
    boxes = len(coco["annotations"])
    print(f"data: synthetic COCO, {args.images:,} images, {boxes:,} boxes, {len(CLASSES)} classes")
    with tempfile.TemporaryDirectory() as folder:
        coco_path = pathlib.Path(folder) / "instances.json"
        coco_path.write_text(json.dumps(coco))
        # FiftyOne maps file names to media paths; the images themselves are never read by either side.
        data_dir = pathlib.Path(folder) / "data.json"
        data_dir.write_text(json.dumps({i["file_name"]: f"{folder}/data/{i['file_name']}" for i in coco["images"]}))
        with ServiceProcess() as services:
            services.connect()
            ours_import, ours = thresher_side(coco_path, args.images)
        print(f"thresher import: {ours_import:.2f} s ({boxes / ours_import:,.0f} boxes/s)")
        if args.skip_fiftyone:
            for name, (seconds, count) in ours.items():
                print(f"  {name:34s} thresher {seconds * 1000:8.1f} ms  ({count:,} images)")
            return
        theirs_import, theirs = fiftyone_side(coco_path, data_dir)
    print(
        f"fiftyone import: {theirs_import:.2f} s -> thresher is {theirs_import / ours_import:.1f}x faster "
        f"(target >= 5x)"
    )
    ratios = []
    for name, (seconds, count) in ours.items():
        their_seconds, their_count = theirs[name]
        ratios.append(their_seconds / seconds)
        agree = "same count" if count == their_count else f"COUNTS DIFFER: fiftyone {their_count:,}"
        print(
            f"  {name:34s} thresher {seconds * 1000:8.1f} ms  fiftyone {their_seconds * 1000:9.1f} ms  "
            f"-> {their_seconds / seconds:6.1f}x  ({count:,} images, {agree})"
        )
    print(f"queries: geometric mean {statistics.geometric_mean(ratios):.1f}x faster (target >= 10x)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

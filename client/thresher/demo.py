"""`thresher demo`: the whole flow on a folder of synthetic images, timing each step.

Starts the three services on loopback with a throwaway embedded store, indexes the folder, adds
metadata two ways, queries, saves and reloads a dataset, and prints the results as dataframes.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import time
from collections.abc import Iterator

import pandas as pd
from PIL import Image

import thresher
import thresher.local_services

LABELS = ["cat", "dog", "bird", None]


def make_images(folder: str, count: int, seed: int = 7) -> list[str]:
    """Writes ``count`` small PNG and JPEG images with varied sizes; returns their relative paths."""
    rng = random.Random(seed)
    paths = []
    for index in range(count):
        split = "train" if index % 4 else "val"
        extension = "png" if index % 3 else "jpg"
        relative = f"{split}/img_{index:04d}.{extension}"
        os.makedirs(os.path.join(folder, split), exist_ok=True)
        size = (rng.choice([32, 64, 96, 128]), rng.choice([32, 48, 64, 96]))
        colour = tuple(rng.randrange(256) for _ in range(3))
        Image.new("RGB", size, colour).save(os.path.join(folder, relative))
        paths.append(relative)
    return paths


class _Timer:
    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        print(f"\n== {name}", flush=True)
        started = time.perf_counter()
        yield
        self.steps.append((name, time.perf_counter() - started))


def run_demo(images: int = 48, home: str | None = None) -> int:
    timer = _Timer()
    with tempfile.TemporaryDirectory(prefix="thresher-demo-") as scratch:
        home = home or os.path.join(scratch, "home")
        folder = os.path.join(scratch, "images")
        with timer.step("start the metadata, scanner and flight services"):
            services = thresher.local_services.LocalServices(home=home).start()
            print(
                f"metadata {services.metadata_address}, scanner {services.scanner_address}, "
                f"flight {services.flight_address}, store {home}"
            )
        try:
            services.connect()
            _flow(timer, folder, images)
        finally:
            services.stop()
    print("\n== timings")
    print(pd.DataFrame(timer.steps, columns=["step", "seconds"]).to_string(index=False, float_format="%.3f"))
    return 0


def _flow(timer: _Timer, folder: str, images: int) -> None:
    with timer.step(f"make {images} synthetic images"):
        paths = make_images(folder, images)
    with timer.step("create a datasource over the folder and scan it"):
        ds = thresher.datasources.get_or_create("demo/pets", "images", folder)
        ds.wait_until_ready()
        print(f"{ds.count()} datapoints; fields: {ds.fields}")
    with timer.step("add metadata with metadata_context (gRPC)"):
        rng = random.Random(1)
        with ds.metadata_context() as ctx:
            for path in paths:
                ctx.update_metadata(path, {"label": rng.choice(LABELS), "episode": rng.randrange(10)})
    with timer.step("add metadata from a dataframe (Arrow Flight DoPut)"):
        scores = pd.DataFrame(
            {
                "path": paths,
                "score": [round(rng.random(), 3) for _ in paths],
                "reviewed": [i % 2 == 0 for i in range(len(paths))],
            }
        )
        ds.upload_metadata_from_dataframe(scores, path_column="path")
        print(f"fields now: {ds.fields}")
    with timer.step('query ds[(ds["episode"] > 5) & ~ds["label"].is_null()]'):
        result = ds[(ds["episode"] > 5) & ~ds["label"].is_null()].all()
        print(result.dataframe[["path", "label", "episode", "width", "height", "score"]].to_string(index=False))
    with timer.step("query wide training images, best scores first"):
        wide = ds[ds["path"].startswith("train/") & (ds["width"] >= 96)].order_by(ds["score"].desc()).limit(5)
        print(wide.all().dataframe[["path", "width", "height", "score", "content_type"]].to_string(index=False))
    with timer.step("save the query as a dataset and reload it"):
        saved = ds[ds["label"].isin(["cat", "dog"])]
        saved.save_dataset("cats-and-dogs")
        reloaded = thresher.datasets.get_dataset("demo/pets", "cats-and-dogs")
        same = sorted(reloaded.all().paths) == sorted(saved.all().paths)
        print(f"dataset 'cats-and-dogs': {reloaded.count()} datapoints; identical after reload: {same}")
        if not same:
            raise RuntimeError("the reloaded dataset differs from the saved query")
    with timer.step("the whole datasource into pandas through Arrow Flight"):
        frame = ds.all().dataframe
        print(frame.head(10).to_string(index=False))
        print(f"... {len(frame)} rows x {len(frame.columns)} columns; dtypes: {dict(frame.dtypes.astype(str))}")

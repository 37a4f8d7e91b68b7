"""ML dataloader throughput: ``as_ml_dataloader("torch")`` on local images against a plain DataLoader.

Both read the same PNG files from a local folder (Thresher reads a local source in place), decode
them with Pillow into H×W×3 uint8 tensors, pair each with its int label and batch them with the
same DataLoader settings; the plain one gets its paths and labels from a list, Thresher's from a
datasource query. Each loader is warmed up, then the best of several interleaved rounds counts.

    python benchmarks/ml.py [--images 2000] [--size 64] [--batch 64] [--workers 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import torch
import torch.utils.data
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def make_images(folder: pathlib.Path, count: int, size: int) -> list[tuple[str, int]]:
    """PNGs with structure and noise (like photos compress); returns (relative path, label) pairs."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    items = []
    for i in range(count):
        pixels = (ramp[None, :, None] + rng.normal(0, 20, (size, size, 3))).clip(0, 255).astype(np.uint8)
        path = f"img/{i:06d}.png"
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / path)
        items.append((path, i % 10))
    return items


class PlainImages(torch.utils.data.Dataset):
    """The baseline: the same files, decoded the same way, with no Thresher in the way."""

    def __init__(self, folder: pathlib.Path, items: list[tuple[str, int]]) -> None:
        self.folder, self.items = folder, items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path, label = self.items[index]
        with Image.open(self.folder / path) as picture:
            image = np.array(picture.convert("RGB"))
        return torch.from_numpy(image), torch.tensor(label, dtype=torch.int64)


def samples_per_second(loader: torch.utils.data.DataLoader) -> float:
    started, count = time.perf_counter(), 0
    for images, _ in loader:
        count += len(images)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import thresher
    from thresher.local_services import LocalServices

    with tempfile.TemporaryDirectory() as scratch, LocalServices(home=f"{scratch}/home") as services:
        folder = pathlib.Path(scratch) / "images"
        items = make_images(folder, args.images, args.size)
        connection = services.connect()
        ds = thresher.datasources.get_or_create("bench/ml", "images", folder, connection=connection)
        ds.wait_until_ready(timeout=600, progress=False)
        ds.upload_metadata_from_dataframe(
            pd.DataFrame({"path": [p for p, _ in items], "label": [label for _, label in items]}), create_missing=True
        )
        result = ds.order_by("path").select("label").all()
        options = dict(batch_size=args.batch, num_workers=args.workers, shuffle=True, persistent_workers=True)
        contenders = {
            "thresher": result.as_ml_dataloader("torch", metadata_columns=["label"], progress=False, **options),
            "plain": torch.utils.data.DataLoader(PlainImages(folder, items), **options),
        }
        for loader in contenders.values():  # warm up: workers started, files in the page cache
            samples_per_second(loader)
        best = {name: 0.0 for name in contenders}
        for _ in range(args.rounds):
            for name, loader in contenders.items():
                best[name] = max(best[name], samples_per_second(loader))
        for name, rate in best.items():
            print(f"{name:>9}: {rate:10.0f} samples/s")
        print(
            f"thresher / plain DataLoader: {best['thresher'] / best['plain']:.2f}x "
            f"({args.images} {args.size}x{args.size} PNGs, batch {args.batch}, {args.workers} workers)"
        )


if __name__ == "__main__":
    main()

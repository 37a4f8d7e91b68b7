"""The gallery's first grid of 100 thumbnails in a real headless browser (target: < 1 s, cache warm).

`thresher up` runs in a child process (services and gallery); a datasource holds 100 scanned PNGs
plus metadata-only datapoints up to --rows, so the grid pages over a large result. Headless Chromium
(Debian's package, driven by Playwright) opens the gallery in a fresh browser context each time, so
the browser's own cache is cold, and the time is from navigation start to the moment all 100
thumbnails have decoded. Peer: the same 100 thumbnail files as plain <img> tags on a static page
from Python's http.server, measured the same way: the floor any page showing them pays.
Also printed: the cold first grid (thumbnails made on first sight), and a page of items deep in the
result (keyset paging) against the first page.

    python benchmarks/gallery.py [--rows 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import pathlib
import shutil
import statistics
import tempfile
import threading
import time

import httpx
import numpy as np
import pandas as pd
from service_process import ServiceProcess

GRID = 100
ALL_LOADED = f"""() => {{
    const images = [...document.querySelectorAll('.tile img.thumb, img.thumb')];
    return images.length >= {GRID} && images.slice(0, {GRID}).every(i => i.complete && i.naturalWidth > 0)
        ? performance.now() : false;
}}"""


def write_images(folder: pathlib.Path, count: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 255, (384, 512, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{i:04d}.png", compress_level=1)


def first_grid_ms(browser, url: str) -> float:
    """Milliseconds from navigation start until the first GRID thumbnails have decoded, in a fresh context."""
    context = browser.new_context(viewport={"width": 1400, "height": 2400}, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(url)
        return float(page.wait_for_function(ALL_LOADED, polling="raf", timeout=120_000).json_value())
    finally:
        context.close()


def static_peer(folder: pathlib.Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    names = sorted(p.name for p in folder.glob("*.webp"))
    tags = "".join(f'<img class="thumb" src="/{n}" width="150" height="150">' for n in names)
    (folder / "index.html").write_text(f"<!doctype html><html><body>{tags}</body></html>")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/index.html"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="datapoints in the datasource")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    import thresher

    chromium = shutil.which("chromium") or "/usr/lib/chromium/chromium"
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="thresher-bench-gallery-"))
    images = scratch / "images"
    images.mkdir()
    write_images(images, GRID)
    with ServiceProcess() as services, sync_playwright() as playwright:
        if services.gallery_url is None:
            raise SystemExit("thresher up served no gallery (is the gallery extra installed?)")
        services.connect()
        ds = thresher.datasources.get_or_create("bench/gallery", "images", images).wait_until_ready(progress=False)
        extra = max(0, args.rows - GRID)
        started = time.perf_counter()
        if extra:
            rng = np.random.default_rng(1)
            ds.upload_metadata_from_dataframe(
                pd.DataFrame(
                    {
                        "path": [f"more/{i:08d}.jpg" for i in range(extra)],
                        "label": pd.array(np.array(["cat", "dog", "bird"])[rng.integers(0, 3, extra)], dtype="string"),
                        "score": rng.random(extra),
                    }
                ),
                path_column="path",
                create_missing=True,
            )  # metadata-only datapoints
        print(
            f"data: {ds.count():,} datapoints ({GRID} scanned PNGs of 512x384, the rest metadata only; "
            f"uploaded in {time.perf_counter() - started:.1f} s)"
        )
        url = f"{services.gallery_url}#namespace=bench%2Fgallery&source=datasource%3Aimages"
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        cold = first_grid_ms(browser, url)
        warm = [first_grid_ms(browser, url) for _ in range(args.repeats)]

        thumbs = scratch / "thumbs"
        thumbs.mkdir()
        with httpx.Client(base_url=services.gallery_url.rstrip("/")) as client:
            items = client.get(
                "/api/items", params={"namespace": "bench/gallery", "source": "datasource:images", "limit": GRID}
            ).json()["items"]
            for n, item in enumerate(items):
                (thumbs / f"{n:04d}.webp").write_bytes(client.get(item["thumb"]).content)
            params = {
                "namespace": "bench/gallery",
                "source": "datasource:images",
                "limit": GRID,
                "captions": "label,score",
            }
            last_id = max(
                i["id"]
                for i in client.get("/api/items", params={**params, "cursor": f"k:{args.rows - GRID - 1}"}).json()[
                    "items"
                ]
                or [{"id": args.rows}]
            )

            def timed(cursor: str) -> float:
                runs = []
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    assert client.get("/api/items", params={**params, "cursor": cursor}).status_code == 200
                    runs.append(time.perf_counter() - t)
                return statistics.median(runs) * 1000

            first_page, deep_page = timed(""), timed(f"k:{max(0, last_id - 2 * GRID)}")
        peer_server, peer_url = static_peer(thumbs)
        peer = [first_grid_ms(browser, peer_url) for _ in range(args.repeats)]
        peer_server.shutdown()
        browser.close()
    shutil.rmtree(scratch, ignore_errors=True)

    best, median, peer_median = min(warm), statistics.median(warm), statistics.median(peer)
    print(f"first grid of {GRID} thumbnails, cold thumbnail cache: {cold:7.0f} ms")
    print(
        f"first grid of {GRID} thumbnails, warm cache:  median {median:7.0f} ms, best {best:7.0f} ms "
        f"(target < 1000 ms: {'met' if median < 1000 else 'MISSED'})"
    )
    print(f"peer: the same {GRID} thumbnails on a static page:  median {peer_median:7.0f} ms")
    print(f"ratio gallery / static page: {median / peer_median:.2f}x")
    print(
        f"a page of {GRID} items: first {first_page:.0f} ms, deep in the result (keyset) {deep_page:.0f} ms "
        f"(ratio {deep_page / first_page:.2f}x)"
    )


if __name__ == "__main__":
    main()

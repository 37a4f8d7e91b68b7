"""Fixtures for the gallery: real services over a scanned folder of small PNGs, the gallery on a free
port, and headless Chromium (Debian's package) driven by Playwright. Screenshots go to
build/gallery-screenshots/ for a person to look at."""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import pandas as pd
import pytest

import thresher
from thresher.services.metadata.server import open_store

from ..deploy.conftest import security
from ..deploy.stack import ServiceStack

SCREENSHOTS = pathlib.Path(__file__).resolve().parents[2] / "build" / "gallery-screenshots"
NAMESPACE = "gallery/pets"
IMAGES = 60
HTML_FILE = "notes.html"
TOTAL = IMAGES + 2  # the images, the one with a <script> path, and HTML_FILE
# Text that would run if the page ever rendered user data as HTML: each sets a flag the tests read.
SCRIPT_PATH = "<script>window.__pwned_path=1</script>.png"  # a folder '<script>…<' holding 'script>.png'
SCRIPT_VALUE = '<script>window.__pwned_value=1</script><img src=x onerror="window.__pwned_img=1">'
BOX = json.dumps(
    [{"label": "cat", "box": [0.1, 0.2, 0.5, 0.4]}, {"label": "ear", "points": [[4, 4], [20, 4], [12, 16]]}]
)


def chromium_executable() -> str:
    """Debian's chromium (a wrapper script that Playwright can launch); never a downloaded browser."""
    found = shutil.which("chromium") or (
        "/usr/lib/chromium/chromium" if os.path.exists("/usr/lib/chromium/chromium") else None
    )
    if found is None:
        pytest.fail("the gallery's browser tests need Debian's chromium package: apt-get install -y chromium")
    return found


def write_images(folder: pathlib.Path, count: int) -> list[str]:
    """Small PNGs of distinct colours, plus one whose path is a <script> tag."""
    from PIL import Image, ImageDraw

    paths = []
    for i in range(count):
        path = f"{'train' if i % 4 else 'val'}/img_{i:03d}.png"
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        image = Image.new("RGB", (96, 64), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
        ImageDraw.Draw(image).text((8, 24), str(i), fill=(255, 255, 255))
        image.save(folder / path)
        paths.append(path)
    (folder / SCRIPT_PATH).parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (200, 30, 30)).save(folder / SCRIPT_PATH)
    paths.append(SCRIPT_PATH)
    (folder / HTML_FILE).write_text("<script>window.__pwned_file=1</script>")  # must never be served as a page
    paths.append(HTML_FILE)
    return paths


def load_datasource(conn, namespace: str, name: str, folder: pathlib.Path):
    paths = write_images(folder, IMAGES)
    ds = thresher.datasources.get_or_create(namespace, name, folder, connection=conn)
    ds.wait_until_ready(timeout=60, progress=False)
    labels = ["cat" if i % 3 else "dog" for i in range(len(paths))]
    labels[-2] = SCRIPT_VALUE
    ds.upload_metadata_from_dataframe(
        pd.DataFrame(
            {
                "path": paths,
                "label": labels,
                "score": [i / len(paths) for i in range(len(paths))],
                "boxes": [BOX] * len(paths),
            }
        ),
        path_column="path",
    )
    return ds


def start_gallery(stack: ServiceStack, cache_dir: pathlib.Path):
    from thresher.gallery import serve

    return serve(
        metadata_address=stack.metadata_address,
        flight_address=stack.flight_address,
        scanner_address=stack.scanner_address,
        cache_dir=str(cache_dir),
    )


@pytest.fixture(scope="module")
def open_gallery(tmp_path_factory):
    """Services without tokens, one scanned datasource in NAMESPACE, and the gallery: (gallery, connection)."""
    home = tmp_path_factory.mktemp("gallery-home")
    store = open_store(str(home / "store"))
    with ServiceStack([store]) as stack:
        conn = thresher.Connection(stack.metadata_address, stack.flight_address, stack.scanner_address, token="")
        load_datasource(conn, NAMESPACE, "images", home / "images")
        server = start_gallery(stack, home / "cache")
        yield server, conn
        server.stop()
        conn.close()
    store.close()


@pytest.fixture(scope="module")
def secured_gallery(tmp_path_factory):
    """Services with tokens (see tests/deploy/conftest.py): data in team/pets and other/stuff, and the gallery."""
    home = tmp_path_factory.mktemp("gallery-secured")
    store = open_store(str(home / "store"))
    with ServiceStack([store], security()) as stack:
        admin = thresher.Connection(
            stack.metadata_address, stack.flight_address, stack.scanner_address, token="admin-token"
        )
        team = load_datasource(admin, "team/pets", "images", home / "team")
        other = load_datasource(admin, "other/stuff", "images", home / "other")
        server = start_gallery(stack, home / "cache")
        yield server, team, other
        server.stop()
        admin.close()
    store.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_executable(), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    # bypass_csp: Playwright's waits evaluate strings, which the gallery's policy forbids; with the policy
    # off, the <script> test also proves the page never renders user text as HTML in the first place.
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.console_errors = []
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    yield page
    context.close()


def screenshot(page, name: str) -> pathlib.Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path

"""The gallery's HTTP surface on the real services: paging, thumbnails and their caching headers,
file bytes, errors, security headers, and `thresher up` / `thresher ui`."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import httpx
import pytest
from PIL import Image

import thresher
from thresher.gallery import thumbnails

from .conftest import HTML_FILE, NAMESPACE, TOTAL

SOURCE = {"namespace": NAMESPACE, "source": "datasource:images"}


@pytest.fixture(scope="module")
def http(open_gallery):
    server, _ = open_gallery
    with httpx.Client(base_url=server.url.rstrip("/")) as client:
        yield client


def test_keyset_pages_cover_the_result_once(http):
    seen, cursor = [], ""
    while True:
        body = http.get("/api/items", params={**SOURCE, "limit": 7, "cursor": cursor}).json()
        assert len(body["items"]) <= 7
        seen.extend(item["id"] for item in body["items"])
        if not body["next"]:
            break
        cursor = body["next"]
    assert len(seen) == TOTAL and seen == sorted(set(seen))
    assert http.get("/api/count", params=SOURCE).json() == {"count": TOTAL}


def test_a_saved_dataset_with_order_and_limit_pages_by_position(http, open_gallery):
    _, conn = open_gallery
    ds = thresher.get_datasource(NAMESPACE, "images", connection=conn)
    ds.order_by(ds["score"].desc()).limit(11).save_dataset("top11")
    seen, cursor = [], ""
    while True:
        body = http.get(
            "/api/items",
            params={**SOURCE, "source": "dataset:top11", "limit": 4, "cursor": cursor, "captions": "score"},
        ).json()
        seen.extend(item["captions"]["score"] for item in body["items"])
        if not body["next"]:
            break
        cursor = body["next"]
    assert len(seen) == 11 and seen == sorted(seen, reverse=True)


def test_bad_input_is_a_400_naming_the_problem(http):
    response = http.get("/api/items", params={**SOURCE, "q": "label == "})
    assert response.status_code == 400
    assert "expected" in response.json()["error"] and response.json()["position"] == 9
    response = http.get("/api/items", params={**SOURCE, "q": "nope == 1"})
    assert response.status_code == 400 and "nope" in response.json()["error"]
    assert http.get("/api/items", params={**SOURCE, "cursor": "zz"}).status_code == 400
    assert http.get("/api/items", params={"namespace": NAMESPACE, "source": "datasource:absent"}).status_code == 404
    assert http.get("/api/items", params={**SOURCE, "as_of": "yesterday"}).status_code == 400


def test_thumbnails_are_made_once_and_cached_immutably(http, open_gallery):
    server, _ = open_gallery
    item = next(i for i in http.get("/api/items", params=SOURCE).json()["items"] if i["thumb"])
    first = http.get(item["thumb"])
    assert first.status_code == 200 and first.headers["content-type"] == "image/webp"
    assert "immutable" in first.headers["cache-control"] and first.headers["etag"]
    again = http.get(item["thumb"], headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    cache = server.app.state.gallery.thumbs
    made = list((cache.folder / "thumbs").rglob("*.webp"))
    assert http.get(item["thumb"]).content == first.content
    assert list((cache.folder / "thumbs").rglob("*.webp")) == made, "a warm request makes no new thumbnail"
    assert max(Image.open(io.BytesIO(first.content)).size) <= thumbnails.SIZE


def test_files_are_images_inline_and_anything_else_a_download(http):
    items = http.get("/api/items", params={**SOURCE, "limit": 500}).json()["items"]
    image = next(i for i in items if i["thumb"])
    html = next(i for i in items if i["path"] == HTML_FILE)
    assert html["thumb"] is None
    response = http.get(f"/api/file/{image['datasource_id']}/{image['id']}")
    assert response.headers["content-type"] == "image/png" and response.content.startswith(b"\x89PNG")
    response = http.get(f"/api/file/{html['datasource_id']}/{html['id']}")
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"] == "attachment"
    assert http.get(f"/api/thumb/{html['datasource_id']}/{html['id']}").status_code == 415
    assert http.get(f"/api/file/{html['datasource_id']}/999999999").status_code == 404


def test_the_page_forbids_inline_script(http):
    response = http.get("/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"


def test_thumbnails_refuse_what_is_not_an_image():
    with pytest.raises(thumbnails.NotAnImageError):
        thumbnails.make_thumbnail(b"<svg xmlns='http://www.w3.org/2000/svg'/>")


@pytest.mark.slow(reason="starts `thresher up`; tests/cli starts it quickly")
def test_thresher_up_serves_the_gallery_and_ui_prints_it(tmp_path):
    env = {**os.environ, "THRESHER_HOME": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "thresher.cli", "up", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = None
        for line in process.stdout:
            if line.startswith("Gallery on "):
                url = line.split()[2]
                break
        assert url, "thresher up printed no gallery address"
        assert httpx.get(url, timeout=30).status_code == 200
        assert httpx.get(url + "api/namespaces", timeout=30).json() == {"namespaces": [], "signed_in": False}
    finally:
        process.terminate()
        process.wait(timeout=30)
    shown = subprocess.run(
        [sys.executable, "-m", "thresher.cli", "ui", "--no-browser", "--url", "http://h:1/"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0 and shown.stdout.strip() == "http://h:1/"


def test_without_the_gallery_extra_the_error_names_it():
    code = (
        "import sys\n"
        "sys.modules['starlette'] = None\n"
        "from thresher.core.errors import MissingExtraError\n"
        "from thresher.gallery import create_app\n"
        "try:\n"
        "    create_app()\n"
        "except MissingExtraError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "thresher[gallery]" in done.stdout, done.stderr


def test_neighbours_come_from_a_vector_field_nearest_first(http, open_gallery):
    import numpy as np

    _, conn = open_gallery
    ds = thresher.get_datasource(NAMESPACE, "images", connection=conn)
    first = http.get("/api/items", params={**SOURCE, "limit": 200}).json()["items"]
    before = http.get(f"/api/neighbours/{first[0]['datasource_id']}/{first[0]['id']}").json()
    assert before == {"field": None, "fields": [], "items": []}  # no vector field yet: the strip stays hidden
    angles = np.arange(len(first)) * 0.02  # cosine distance grows with the angle between two tiles
    ds.upload_vectors("look", [item["path"] for item in first], np.stack([np.cos(angles), np.sin(angles)], axis=1))
    middle = first[10]
    body = http.get(f"/api/neighbours/{middle['datasource_id']}/{middle['id']}", params={"k": 4}).json()
    assert body["field"] == "look" and body["fields"] == ["look"]
    assert [item["path"] for item in body["items"]][:2] in (
        [first[9]["path"], first[11]["path"]],
        [first[11]["path"], first[9]["path"]],
    )
    assert middle["path"] not in [item["path"] for item in body["items"]] and len(body["items"]) == 4
    distances = [item["distance"] for item in body["items"]]
    assert distances == sorted(distances) and all(item["thumb"] for item in body["items"])
    bad = http.get(f"/api/neighbours/{middle['datasource_id']}/{middle['id']}", params={"field": "label"})
    assert bad.status_code == 400 and "not a vector field" in bad.json()["error"]

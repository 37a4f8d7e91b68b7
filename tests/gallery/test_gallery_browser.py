"""The whole gallery flow in headless Chromium on the real services: pick, query, facet, page, open,
time-travel, save; and user text that looks like HTML stays text. Each failure says what a user saw."""

from __future__ import annotations

import pytest

import thresher

from .conftest import NAMESPACE, SCRIPT_PATH, SCRIPT_VALUE, TOTAL, screenshot

LABELS = ["cat" if i % 3 else "dog" for i in range(TOTAL)]
LABELS[-2] = SCRIPT_VALUE
CATS, DOGS = LABELS.count("cat"), LABELS.count("dog")


def tiles(page) -> list[str]:
    return page.eval_on_selector_all(".tile", "nodes => nodes.map(n => n.dataset.path)")


def wait_for_tiles(page, count: int, what: str) -> None:
    try:
        page.wait_for_function(f"document.querySelectorAll('.tile').length === {count}", timeout=15_000)
    except Exception:
        shot = screenshot(page, f"failed-{what}")
        raise AssertionError(
            f"{what}: expected {count} thumbnails, the user saw {len(tiles(page))}; "
            f"status {page.inner_text('#status')!r}, error {page.inner_text('#query-error')!r} "
            f"(screenshot {shot})"
        ) from None


def run_query(page, text: str) -> None:
    page.fill("#query", text)
    page.click("#run")


@pytest.fixture
def gallery_page(page, open_gallery):
    server, _ = open_gallery
    page.goto(server.url)
    wait_for_tiles(page, TOTAL, "opening the gallery")
    return page


def test_grid_facets_and_query(gallery_page):
    page = gallery_page
    assert page.input_value("#namespace") == NAMESPACE
    assert page.input_value("#source") == "datasource:images"
    page.wait_for_function("document.getElementById('status').textContent.includes('datapoints')")
    assert page.inner_text("#status") == f"{TOTAL} datapoints"
    page.wait_for_function(
        "document.querySelectorAll('.tile img.thumb').length > 0 && "
        "[...document.querySelectorAll('.tile img.thumb')].slice(0, 8).every(i => i.complete && i.naturalWidth > 0)"
    )
    page.wait_for_selector(".facet[data-field=label] .bar-row")
    label_rows = page.eval_on_selector_all(".facet[data-field=label] .bar-row", "rows => rows.map(r => r.textContent)")
    assert f"cat{CATS}" in label_rows and f"dog{DOGS}" in label_rows, f"the label facet showed {label_rows}"
    page.wait_for_selector(".facet[data-field=score] .bar-row")
    assert len(page.query_selector_all(".facet[data-field=score] .bar-row")) == 20, "the score histogram has 20 bins"
    screenshot(page, "grid")

    run_query(page, 'label == "cat" and score >=')
    page.wait_for_function("document.getElementById('query-error').textContent.length > 0")
    error = page.inner_text("#query-error")
    assert "column" in error and "^" in error, f"a bad query showed {error!r}"
    screenshot(page, "bad-query")

    run_query(page, 'label == "cat"')
    wait_for_tiles(page, CATS, "a query for cats")
    assert page.inner_text("#query-error") == ""
    page.wait_for_function(f"document.getElementById('status').textContent === '{CATS} datapoints'")

    run_query(page, "")
    wait_for_tiles(page, TOTAL, "clearing the query")
    page.click(".facet[data-field=label] .bar-row:has-text('dog')")
    wait_for_tiles(page, DOGS, "clicking the dog facet")
    assert page.input_value("#query") == 'label == "dog"'


def test_scrolling_loads_pages_until_the_end(page, open_gallery):
    server, _ = open_gallery
    page.goto(server.url + "?page=10")
    page.wait_for_selector(".tile")
    try:  # scroll to the bottom again and again, as a user would, until every datapoint is there
        page.wait_for_function(
            f"""() => {{
            const wrap = document.getElementById('grid-wrap');
            wrap.scrollTo(0, wrap.scrollHeight);
            return document.querySelectorAll('.tile').length >= {TOTAL};
        }}""",
            polling=100,
            timeout=30_000,
        )
    except Exception:
        screenshot(page, "failed-scrolling")
    seen = tiles(page)
    assert len(seen) == TOTAL and len(set(seen)) == len(seen), (
        f"scrolling to the end showed {len(seen)} thumbnails ({len(set(seen))} distinct), not {TOTAL}"
    )


def test_detail_history_as_of_and_annotations(gallery_page):
    page = gallery_page
    page.click(".tile[data-path='train/img_001.png']")
    page.wait_for_selector("#detail:not([hidden])")
    page.wait_for_function(
        "document.getElementById('full').complete && document.getElementById('full').naturalWidth === 96"
    )
    assert page.inner_text("#detail-path") == "train/img_001.png"
    fields = page.inner_text("#detail-fields")
    assert "label" in fields and "cat" in fields and "score" in fields, f"the detail showed fields {fields!r}"
    history_rows = page.query_selector_all("#detail-history tr")
    assert len(history_rows) >= 3, "history shows the scan's write and the metadata upload"
    page.wait_for_function("document.querySelectorAll('#overlay .annotation').length === 2")
    toggles = page.eval_on_selector_all("#labels label", "labels => labels.map(l => l.textContent.trim())")
    assert toggles == ["boxes: cat (1)", "boxes: ear (1)"], f"the annotation toggles were {toggles}"
    screenshot(page, "detail")
    page.click("#labels label:has-text('cat') input")
    assert page.eval_on_selector("#overlay rect", "r => r.style.display") == "none", "unticking 'cat' hides its box"

    page.fill("#detail-as-of", "2000-01-01T00:00:00Z")
    page.click("#detail-asof-form button")
    page.wait_for_function("document.getElementById('detail-error').textContent.length > 0")
    assert "at that instant" in page.inner_text("#detail-error")
    page.keyboard.press("Escape")
    assert page.is_hidden("#detail")


def test_save_the_query_as_a_dataset_and_open_it(gallery_page, open_gallery):
    page = gallery_page
    _, conn = open_gallery
    run_query(page, 'label == "dog"')
    wait_for_tiles(page, DOGS, "a query for dogs")
    page.fill("#dataset-name", "dogs")
    page.click("#save")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Saved dataset dogs')")
    assert len(thresher.get_dataset(NAMESPACE, "dogs", connection=conn).all()) == DOGS
    page.select_option("#source", "dataset:dogs")
    run_query(page, "")
    wait_for_tiles(page, DOGS, "opening the saved dataset")


def test_text_that_looks_like_html_is_shown_as_text(gallery_page):
    page = gallery_page
    run_query(page, 'path startswith "<script>"')
    wait_for_tiles(page, 1, "finding the datapoint with a <script> path")
    page.fill("#captions", "label")
    page.click("#run")
    page.wait_for_function("document.querySelector('.tile .kv') !== null")
    caption = page.inner_text(".tile .caption")
    assert SCRIPT_PATH in caption and SCRIPT_VALUE in caption, f"the caption showed {caption!r}"
    page.click(".tile")
    page.wait_for_function("document.getElementById('detail-path').textContent.length > 0")
    assert page.inner_text("#detail-path") == SCRIPT_PATH
    assert SCRIPT_VALUE in page.inner_text("#detail-fields")
    screenshot(page, "html-as-text")
    ran = page.evaluate("[window.__pwned_path, window.__pwned_value, window.__pwned_img]")
    assert ran == [None, None, None], f"user text ran as script: {ran}"
    assert page.query_selector("#grid script, #detail script, #grid img[src='x'], #detail img[src='x']") is None
    assert not page.console_errors, f"the page raised {page.console_errors}"


def test_a_datapoint_shows_its_nearest_neighbours_once_there_is_a_vector_field(gallery_page, open_gallery):
    import numpy as np

    page = gallery_page
    _, conn = open_gallery
    ds = thresher.get_datasource(NAMESPACE, "images", connection=conn)
    paths = ds[ds["path"].startswith("train/img_")].order_by("path").limit(6).all().paths
    ds.upload_vectors("look", paths, np.array([[1.0, i * 0.1] for i in range(6)]))
    page.click(f".tile[data-path='{paths[2]}']")
    page.wait_for_selector("#neighbours:not([hidden])")
    page.wait_for_function("document.querySelectorAll('#neighbour-grid .tile').length > 0")
    shown = page.eval_on_selector_all("#neighbour-grid .tile", "tiles => tiles.map(t => t.dataset.path)")
    assert shown[:2] in ([paths[1], paths[3]], [paths[3], paths[1]]), f"the neighbours strip showed {shown}"
    assert paths[2] not in shown, "a datapoint is not its own neighbour in the strip"
    screenshot(page, "neighbours")
    page.click(f"#neighbour-grid .tile[data-path='{paths[1]}']")
    page.wait_for_function(f"document.getElementById('detail-path').textContent === '{paths[1]}'")

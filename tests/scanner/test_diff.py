from thresher.services.scanner.diff import Diff
from thresher.services.scanner.scan_sources import Page


def test_splits_added_and_changed_and_keeps_the_removed():
    diff = Diff({"same": (3, 1_000), "grown": (3, 1_000), "touched": (3, 1_000), "gone": (1, 1), "bare": (None, None)})
    page = Page(
        ["same", "grown", "new", "touched", "bare"],
        [3, 4, 3, 3, 3],
        [1_000_999, 1_000_000, 1_000_000, 2_000_000, 2_000_000],
    )  # compared at microseconds
    added, changed = diff.split(page)
    assert added == Page(["new"], [3], [1_000_000])
    assert changed == Page(["grown", "touched", "bare"], [4, 3, 3], [1_000_000, 2_000_000, 2_000_000])
    assert diff.removed() == ["gone"]


def test_pages_take_and_extend_keep_columns_aligned():
    page = Page(["a", "b", "c"], [1, 2, 3], [10, 20, 30])
    taken = page.take([2, 0])
    assert taken == Page(["c", "a"], [3, 1], [30, 10])
    tagged = Page(["d"], [4], [40], ["etag-d"])
    taken.extend(tagged)
    assert taken == Page(["c", "a", "d"], [3, 1, 4], [30, 10, 40], [None, None, "etag-d"])


def test_tagged_sources_compare_etags_not_times():
    diff = Diff({"same": (3, "e1"), "retagged": (3, "e2"), "gone": (1, "e3")}, by_etag=True)
    page = Page(["same", "retagged", "new"], [3, 3, 1], [5_000_000, 1, 1], ["e1", "e2-new", "e4"])
    added, changed = diff.split(page)  # "same" has a new mtime but its etag: unchanged
    assert added.paths == ["new"] and changed.paths == ["retagged"] and changed.etags == ["e2-new"]
    assert diff.removed() == ["gone"]


def test_once_nothing_indexed_is_left_every_file_is_added():
    diff = Diff({"a": (1, 1)})
    assert diff.split(Page(["a"], [1], [1_000]))[0].paths == []
    page = Page(["b", "c"], [1, 1], [1, 1])
    assert diff.split(page) == (page, Page())


def test_take_and_slices_keep_content_types():
    page = Page(["a", "b"], [1, 2], [1, 2], ["ea", "eb"], ["image/png", None])
    assert page.take([1]) == Page(["b"], [2], [2], ["eb"], [None])
    assert page[:1] == Page(["a"], [1], [1], ["ea"], ["image/png"])
    plain = Page(["c"], [3], [3])
    plain.extend(page)
    assert plain.content_types == [None, "image/png", None] and plain.etags == [None, "ea", "eb"]

from thresher.services.scanner.diff import Diff
from thresher.services.scanner.sources import Page


def test_splits_added_and_changed_and_keeps_the_removed():
    diff = Diff({"same": (3, 1_000), "grown": (3, 1_000), "touched": (3, 1_000), "gone": (1, 1), "bare": (None, None)})
    page = Page(["same", "grown", "new", "touched", "bare"], [3, 4, 3, 3, 3],
                [1_000_999, 1_000_000, 1_000_000, 2_000_000, 2_000_000])  # compared at microseconds
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

"""The in-memory path index: lookups by hash, and when indexes are read, served and dropped."""

import numpy as np
import pyarrow as pa

from thresher.services.metadata.path_index import PathIndex, PathIndexes, build

ROWS = pa.table({"path": ["a.png", "b.png", "c.png", "ü.png"], "n": [0, 1, 2, 3]})


def test_lookups_find_each_path_and_nothing_else():
    index = build(7, "record", ROWS, "path", 0.0)
    for number, path in enumerate(ROWS["path"].to_pylist()):
        assert index.rows_of(path).to_pylist() == [{"path": path, "n": number}]
    assert index.rows_of("none.png").num_rows == 0 and index.rows_of("none.png").schema == ROWS.schema
    # Several paths come back in row order, each once; missing ones have no row.
    assert index.rows_of_paths(["c.png", "none.png", "a.png"])["n"].to_pylist() == [0, 2]
    assert index.rows_of_paths([]).num_rows == 0


def test_paths_that_share_a_hash_are_told_apart_by_their_text():
    # Every path under one hash: each lookup must compare the texts of all the candidates.
    same_hash = np.full(ROWS.num_rows, hash("c.png"), dtype=np.int64)
    index = PathIndex(1, None, ROWS, same_hash, np.arange(ROWS.num_rows), ROWS["path"], 0, 0.0)
    assert index.rows_of("c.png")["n"].to_pylist() == [2]
    assert index.rows_of_paths(["c.png", "a.png"])["n"].to_pylist() == [2]  # a.png's own hash is not there
    assert index.rows_of("a.png").num_rows == 0


def test_an_index_is_read_after_enough_lookups_and_served_under_its_marker_only():
    marker = [5]

    def read(datasource_id: int, max_bytes: int) -> PathIndex | None:
        reads.append(datasource_id)
        return build(marker[0], "record", ROWS, "path", 0.0)

    reads: list[int] = []
    indexes = PathIndexes(read, after=3)
    assert [indexes.find(1, 5, "record") for _ in range(2)] == [None, None]
    assert indexes.wait_idle(30) and reads == []
    assert indexes.find(1, 5, "record") is None  # the third starts the read
    assert indexes.wait_idle(30) and reads == [1]
    assert indexes.find(1, 5, "record") is indexes.held(1)
    assert indexes.find(1, 5, "another record") is None  # compiled from another version of the datasource
    # A write moves the marker: the index is dropped at once, and read again only after `after`
    # lookups under the new marker.
    marker[0] = 6
    indexes.drop_stale(6)
    assert indexes.held(1) is None
    for _ in range(2):
        assert indexes.find(1, 6, "record") is None
    assert indexes.wait_idle(30) and reads == [1]
    indexes.find(1, 6, "record")
    assert indexes.wait_idle(30) and reads == [1, 1] and indexes.find(1, 6, "record") is not None


def test_an_index_past_the_cap_is_not_kept_nor_read_again_under_the_same_marker():
    reads: list[int] = []

    def read(datasource_id: int, max_bytes: int) -> PathIndex | None:
        reads.append(datasource_id)
        return build(1, "record", ROWS, "path", 0.0)

    indexes = PathIndexes(read, after=1, max_bytes=10)
    for _ in range(3):
        assert indexes.find(1, 1, "record") is None
        assert indexes.wait_idle(30)
    assert reads == [1] and indexes.held(1) is None


def test_indexes_share_the_cap_and_a_new_one_makes_room():
    def read(datasource_id: int, max_bytes: int) -> PathIndex | None:
        return build(1, "record", ROWS, "path", 0.0)

    size = build(1, "record", ROWS, "path", 0.0).nbytes
    indexes = PathIndexes(read, after=1, max_bytes=size + size // 2)  # room for one
    indexes.find(1, 1, "record")
    assert indexes.wait_idle(30) and indexes.held(1) is not None
    indexes.find(2, 1, "record")
    assert indexes.wait_idle(30) and indexes.held(2) is not None and indexes.held(1) is None


def test_an_index_dropped_before_it_paid_for_its_read_waits_for_more_lookups_next_time():
    marker = [1]

    def read(datasource_id: int, max_bytes: int) -> PathIndex | None:
        return build(marker[0], "record", ROWS, "path", 0.0)

    indexes = PathIndexes(read, after=2)
    indexes.payback_rows = 2  # 4 rows: an index pays once it answered 2 lookups

    def read_after(lookups: int) -> None:
        """``lookups`` lookups under a new marker start the read (one fewer does not)."""
        marker[0] += 1
        indexes.drop_stale(marker[0])
        for _ in range(lookups - 1):
            assert indexes.find(1, marker[0], "record") is None
        assert indexes.wait_idle(30) and indexes.held(1) is None
        indexes.find(1, marker[0], "record")
        assert indexes.wait_idle(30) and indexes.held(1) is not None

    read_after(2)
    read_after(4)  # the one before answered nothing
    read_after(8)
    assert indexes.find(1, marker[0], "record") is not None  # answered 1: not paid yet
    read_after(16)
    for _ in range(2):
        assert indexes.find(1, marker[0], "record") is not None  # 2: paid
    read_after(2)

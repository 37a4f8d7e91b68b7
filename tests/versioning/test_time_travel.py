"""Issue 10: every write kept; as_of reads each earlier state exactly, across restarts and concurrent writes."""

from __future__ import annotations

import datetime as dt
import getpass
import tempfile
import threading

import pandas as pd
import pytest

import thresher
from thresher import Field
from thresher.local_services import LocalServices

UTC = dt.UTC


# Removed when the test process exits, so runs leave no folders behind in /tmp.
_FOLDERS = tempfile.TemporaryDirectory(prefix="thresher-versioning-")


def _empty_folder() -> str:
    """A real, empty source folder, so the datasource's scan succeeds with nothing in it."""
    return tempfile.mkdtemp(dir=_FOLDERS.name)


def _new_datasource(connection, namespace: str, name: str):
    ds = thresher.datasources.create_datasource(namespace, name, _empty_folder(), connection=connection)
    return ds.wait_until_ready(progress=False)


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


def _state(view) -> dict[str, dict]:
    frame = view.all().dataframe.set_index("path").drop(columns=["datapoint_id"])
    return {path: {k: v for k, v in row.items() if not pd.isna(v)} for path, row in frame.iterrows()}


def _timeline(ds) -> list[tuple[dt.datetime, dict]]:
    """Writes, deletes and re-adds; returns (instant after each step, the state it must read)."""
    steps = []

    def mark(expected):
        steps.append((_now(), expected))

    mark({})
    with ds.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata(["a", "b"], {"x": 1, "label": "cat"})
    mark({"a": {"x": 1, "label": "cat"}, "b": {"x": 1, "label": "cat"}})
    ds.upload_metadata_from_dataframe(pd.DataFrame({"path": ["a", "c"], "x": [2, 3]}), create_missing=True)
    mark({"a": {"x": 2, "label": "cat"}, "b": {"x": 1, "label": "cat"}, "c": {"x": 3}})
    ds.delete_metadata(["a"], ["label"])
    mark({"a": {"x": 2}, "b": {"x": 1, "label": "cat"}, "c": {"x": 3}})
    ds.delete_datapoints(["b"])
    mark({"a": {"x": 2}, "c": {"x": 3}})
    with ds.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata("b", {"label": "dog"})
    mark({"a": {"x": 2}, "b": {"label": "dog"}, "c": {"x": 3}})
    return steps


def test_each_instant_reads_its_state_through_every_entry_point(client, namespace):
    ds = _new_datasource(client, namespace, "versions")
    steps = _timeline(ds)
    for instant, expected in steps:
        view = ds.as_of(instant)
        assert _state(view) == expected
        assert view.count() == len(expected) == len(view.head(100))
        assert _state(ds.as_of(instant.timestamp())) == expected  # Unix seconds, the same instant
        for path, values in expected.items():
            assert {k: v for k, v in view.get_datapoint(path).metadata.items() if v is not None} == values
    assert _state(ds) == steps[-1][1]
    filtered = ds[ds["x"] >= 2].as_of(steps[2][0])
    assert sorted(filtered.all().paths) == ["a", "c"]


def test_a_field_read_at_another_instant_beside_current_fields(client, namespace):
    ds = _new_datasource(client, namespace, "fields")
    steps = _timeline(ds)
    then = steps[1][0]
    frame = ds.select(Field("label", as_of=then, alias="label_then"), "*").all().dataframe.set_index("path")
    assert frame.loc["a", "label_then"] == "cat" and pd.isna(frame.loc["a", "label"])
    assert frame.loc["b", "label"] == "dog" and frame.loc["b", "label_then"] == "cat"
    assert {"x", "label", "label_then"} <= set(frame.columns)
    with pytest.raises(thresher.QueryError):
        ds.select(Field("x"), Field("label", alias="x"))


def test_datasets_pin_their_instant_or_reproduce_their_save_time(client, namespace):
    ds = _new_datasource(client, namespace, "pinned")
    with ds.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata(["a", "b"], {"x": 1})
    before = _now()
    cats = ds[ds["x"] == 1]
    cats.save_dataset("pinned", as_of=before)
    cats.save_dataset("live")
    ds.upload_metadata_from_dataframe(pd.DataFrame({"path": ["a", "c"], "x": [5, 1]}), create_missing=True)

    pinned = thresher.datasets.get_dataset(namespace, "pinned", connection=client)
    assert sorted(pinned.all().paths) == ["a", "b"]
    assert sorted(thresher.datasets.get_dataset(namespace, "pinned", as_of="now", connection=client).all().paths) == [
        "b",
        "c",
    ]
    live = thresher.datasets.get_dataset(namespace, "live", connection=client)
    assert sorted(live.all().paths) == ["b", "c"]
    reproduced = thresher.datasets.get_dataset(namespace, "live", as_of="saved", connection=client)
    assert sorted(reproduced.all().paths) == ["a", "b"]
    assert before <= live.saved_at <= _now()


def test_history_and_changes_say_what_when_and_who(client, namespace):
    ds = _new_datasource(client, namespace, "audit")
    steps = _timeline(ds)
    history = ds.history("a")
    assert history["operation"].tolist() == ["set", "set", "delete_metadata"]
    assert history["x"].tolist()[:2] == [1, 2] and list(history["cleared"].iloc[2]) == ["label"]
    assert set(history["actor"]) == {getpass.getuser()}
    assert history["written_at"].is_monotonic_increasing
    label_history = ds.all()["a"].history("label")
    assert label_history["operation"].tolist() == ["set", "delete_metadata"]
    changes = ds.changes(since=steps[3][0])
    assert changes["operation"].tolist() == ["delete_datapoint", "set"]
    assert changes["path"].tolist() == ["b", "b"]
    assert len(ds.changes(until=steps[1][0])) == 2
    with pytest.raises(thresher.NotFoundError):
        ds.history("ghost")


def test_unchanged_fields_take_no_log_values(client, namespace, local_services):
    ds = _new_datasource(client, namespace, "sparse")
    frame = pd.DataFrame({"path": [f"p{i}" for i in range(100)], **{f"f{j}": range(100) for j in range(5)}})
    ds.upload_metadata_from_dataframe(frame, create_missing=True)
    ds.upload_metadata_from_dataframe(pd.DataFrame({"path": ["p1"], "f0": [-1]}), create_missing=True)
    history = ds.history("p1")
    # The second write logged one value, not a copy of the whole row.
    assert history.iloc[1][[f"f{j}" for j in range(5)]].notna().tolist() == [True, False, False, False, False]


@pytest.mark.slow(reason="concurrent writers; each instant is read by the quick tests above")
def test_time_travel_reads_during_concurrent_writes(client, namespace):
    ds = _new_datasource(client, namespace, "busy")
    acknowledged: list[tuple[dt.datetime, int]] = []
    done = threading.Event()
    failures: list[str] = []

    def writer():
        try:
            for value in range(40):
                ds.upload_metadata_from_dataframe(pd.DataFrame({"path": ["p"], "v": [value]}), create_missing=True)
                acknowledged.append((_now(), value))
        finally:
            done.set()

    def reader():
        # Every acknowledged write must be what as_of(its ack time) sees, while writes go on.
        checked = 0
        while not done.is_set() or checked < len(acknowledged):
            if checked < len(acknowledged):
                instant, value = acknowledged[checked]
                got = ds.as_of(instant).all().dataframe["v"].tolist()
                if got != [value]:
                    failures.append(f"as_of write {value}: read {got}")
                checked += 1
            else:
                done.wait(0.01)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures and len(acknowledged) == 40


@pytest.mark.slow  # starts and stops all three services three times
def test_instants_survive_metadata_service_restarts(tmp_path):
    home = str(tmp_path / "home")
    expected: list[tuple[dt.datetime, dict]] = []
    with LocalServices(home=home) as services:
        ds = _new_datasource(services.connect(), "t/restart", "d")
        expected += _timeline(ds)
    with LocalServices(home=home) as services:
        ds = thresher.datasources.get_datasource("t/restart", "d", connection=services.connect())
        for instant, state in expected:
            assert _state(ds.as_of(instant)) == state
        ds.delete_datapoints(["a"])
        expected.append((_now(), {k: v for k, v in expected[-1][1].items() if k != "a"}))
    with LocalServices(home=home) as services:
        ds = thresher.datasources.get_datasource("t/restart", "d", connection=services.connect())
        for instant, state in expected:
            assert _state(ds.as_of(instant)) == state

"""Annotation fields on both stores: typed, validated, versioned, queried over their objects."""

from __future__ import annotations

import datetime as dt
import hashlib

import grpc
import pyarrow as pa
import pytest
from google.protobuf import timestamp_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thresher.core import labels as L
from thresher.core.arrow_io import read_batch, read_schema
from thresher.core.types import TYPE_METADATA_KEY, FieldType, to_proto_value
from thresher.query import Column
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as pb

CAR = L.Detection("car", (0.1, 0.2, 0.3, 0.4), 0.9, instance_id=7, attributes={"occluded": True, "n": 2})
PERSON = L.Detection("person", (0.5, 0.5, 0.25, 0.5), 0.3)
VALUES = {
    "cls": L.Classification("cat", 0.75),
    "det": L.Detections([CAR, PERSON]),
    "poly": L.Polylines(
        [
            L.Polyline(
                "road",
                ((0.0, 0.0), (1.0, 0.5), (0.25, 1.0)),
                closed=True,
                filled=True,
                confidence=0.5,
                attributes={"lane": "left"},
            )
        ]
    ),
    "kp": L.Keypoints([L.Keypoint("person", ((0.1, 0.1), (0.2, 0.3)), instance_id=1)]),
}


def _upsert(stub, datasource_id, rows: dict[str, dict]):
    return stub.UpsertMetadata(
        pb.UpsertMetadataRequest(
            datasource_id=datasource_id,
            datapoints=[
                pb.DatapointValues(path=path, values={k: to_proto_value(v) for k, v in values.items()})
                for path, values in rows.items()
            ],
            create_missing=True,
        )
    )


def _read(meta, datasource_id, filter_=None, **kw) -> pa.Table:
    query = common_pb2.Query(datasource_id=datasource_id, **kw)
    if filter_ is not None:
        query.filter.CopyFrom(filter_.to_proto() if hasattr(filter_, "to_proto") else filter_)
    return meta.query_table(query)


def _values(table: pa.Table, field: str, kind: FieldType) -> dict[str, object]:
    return dict(zip(table["path"].to_pylist(), L.from_arrow(kind.annotation_kind, table[field])))


def test_each_kind_round_trips_with_its_type_and_arrow_type(meta, metadata_stub):
    source = meta.datasource()
    _upsert(metadata_stub, source.id, {"a.png": VALUES, "b.png": {"det": L.Detections([])}})
    fields = {
        f.name: f.type for f in metadata_stub.GetDatasource(pb.GetDatasourceRequest(id=source.id)).datasource.fields
    }
    assert fields == {
        "cls": common_pb2.FIELD_TYPE_ANNOTATION_CLASSIFICATION,
        "det": common_pb2.FIELD_TYPE_ANNOTATION_DETECTIONS,
        "poly": common_pb2.FIELD_TYPE_ANNOTATION_POLYLINES,
        "kp": common_pb2.FIELD_TYPE_ANNOTATION_KEYPOINTS,
    }
    table = _read(meta, source.id)
    for name, value in VALUES.items():
        kind = FieldType.annotation(value.kind)
        assert table.schema.field(name).type == kind.arrow_type
        assert table.schema.field(name).metadata[TYPE_METADATA_KEY] == f"annotation:{value.kind}".encode()
        assert _values(table, name, kind)["a.png"] == value
    assert _values(table, "det", FieldType.DETECTIONS)["b.png"] == L.Detections([])
    assert _values(table, "cls", FieldType.CLASSIFICATION)["b.png"] is None


def test_arrow_upload_with_optional_fields_left_out(meta, metadata_stub):
    source = meta.datasource()
    boxes = pa.array(
        [[{"label": "car", "box": [0.0, 0.0, 1.0, 1.0]}], None, []],
        pa.list_(pa.struct([("label", pa.string()), ("box", pa.list_(pa.float64()))])),
    )
    meta.upload(source.id, pa.table({"path": ["a", "b", "c"], "gt": boxes}))
    got = _values(_read(meta, source.id), "gt", FieldType.DETECTIONS)
    assert got == {"a": L.Detections([L.Detection("car", (0.0, 0.0, 1.0, 1.0))]), "b": None, "c": L.Detections([])}


def test_segmentation_mask_bytes_are_stored_as_a_blob(meta, metadata_stub):
    source = meta.datasource()
    mask = b"\x89PNG fake mask bytes"
    _upsert(metadata_stub, source.id, {"a": {"seg": L.Segmentation(mask, ("bg", "road"))}})
    got = _values(_read(meta, source.id), "seg", FieldType.SEGMENTATION)["a"]
    assert got == L.Segmentation(hashlib.sha256(mask).hexdigest(), ("bg", "road"))


def test_first_write_fixes_the_kind(meta, metadata_stub):
    source = meta.datasource()
    _upsert(metadata_stub, source.id, {"a": {"gt": VALUES["det"]}})
    for other in (VALUES["cls"], VALUES["kp"], "car", 3):
        with pytest.raises(grpc.RpcError) as excinfo:
            _upsert(metadata_stub, source.id, {"b": {"gt": other}})
        assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "'gt' has type annotation:detections" in excinfo.value.details()


@pytest.mark.parametrize(
    "bad, problem",
    [
        (L.Detections([L.Detection("car", (0.5, 0.5, 0.6, 0.1))]), "is not a relative [x, y, w, h] inside the image"),
        (L.Detections([L.Detection("car", (0.1, 0.1, 0.1, -0.1))]), "inside the image"),
        (L.Detections([CAR, L.Detection("", (0.1, 0.1, 0.1, 0.1))]), "object 1 has no label"),
        (L.Detections([L.Detection("car", (0.1, 0.1, 0.1, 0.1), confidence=1.5)]), "confidence 1.5"),
        (L.Detections([L.Detection("car", (0.1, 0.1, 0.1, 0.1), confidence=float("nan"))]), "confidence"),
        (L.Detections([L.Detection("car", (0.1, 0.1, 0.1))]), "3 coordinates, not 4"),
        (L.Polylines([L.Polyline("x", ((0.1, 0.1), (1.5, 0.2)))]), "point [1.5, 0.2] outside the image"),
        (L.Classification(""), "has no label"),
        (L.Segmentation("not-a-digest"), "is not a sha256 hex digest"),
    ],
)
def test_a_malformed_value_rejects_the_whole_write_naming_datapoint_and_problem(meta, metadata_stub, bad, problem):
    source = meta.datasource()
    with pytest.raises(grpc.RpcError) as excinfo:
        _upsert(metadata_stub, source.id, {"good.png": {"x": 1, "gt": None}, "bad.png": {"x": 2, "gt": bad}})
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = excinfo.value.details()
    assert "'gt'" in details and "'bad.png'" in details and problem in details
    assert _read(meta, source.id).num_rows == 0


def test_arrow_upload_with_a_bad_box_names_the_row_path(meta, metadata_stub):
    source = meta.datasource()
    column = L.to_arrow("detections", [VALUES["det"], L.Detections([L.Detection("car", (0.9, 0.0, 0.2, 0.1))])])
    with pytest.raises(grpc.RpcError) as excinfo:
        meta.upload(source.id, pa.table({"path": ["ok", "second"], "gt": column}))
    assert "'second'" in excinfo.value.details()
    assert _read(meta, source.id).num_rows == 0


def test_as_of_and_history_keep_every_version(meta, metadata_stub):
    source = meta.datasource()
    first = L.Detections([CAR])
    _upsert(metadata_stub, source.id, {"a": {"gt": first}})
    between = timestamp_pb2.Timestamp()
    between.FromDatetime(dt.datetime.now(dt.UTC))
    _upsert(metadata_stub, source.id, {"a": {"gt": VALUES["det"]}})
    assert _values(_read(meta, source.id), "gt", FieldType.DETECTIONS)["a"] == VALUES["det"]
    assert _values(_read(meta, source.id, as_of=between), "gt", FieldType.DETECTIONS)["a"] == first
    filtered = _read(meta, source.id, Column("gt", FieldType.DETECTIONS).count() == 1, as_of=between)
    assert filtered["path"].to_pylist() == ["a"]
    responses = iter(metadata_stub.GetHistory(pb.GetHistoryRequest(datasource_id=source.id, path="a", field="gt")))
    schema = read_schema(next(responses).schema)
    history = pa.Table.from_batches([read_batch(r.record_batch, schema) for r in responses], schema)
    assert history.schema.field("gt").type == FieldType.DETECTIONS.arrow_type
    assert L.from_arrow("detections", history["gt"]) == [first, VALUES["det"]]


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(dt.datetime.now(dt.UTC))
    return stamp


def test_annotation_values_moved_into_the_log_keep_every_version(meta, metadata_stub):
    # Later writes move superseded annotation values (nested in DuckDB, jsonb in PostgreSQL) into the
    # log: a write of another field only, a full rewrite, a segmentation, then a cleared value.
    source = meta.datasource()
    first, second = L.Detections([CAR]), VALUES["det"]
    seg = L.Segmentation(b"mask one", ("bg",))
    seg_digest = L.Segmentation(hashlib.sha256(b"mask one").hexdigest(), ("bg",))
    _upsert(metadata_stub, source.id, {"a": {"gt": first, "n": 1}, "b": {"gt": second}})
    after_first = _now()
    _upsert(metadata_stub, source.id, {"a": {"n": 2}})
    after_other_field = _now()
    _upsert(metadata_stub, source.id, {"a": {"gt": second, "seg": seg}, "b": {"gt": first}})
    after_rewrite = _now()
    metadata_stub.DeleteMetadata(pb.DeleteMetadataRequest(datasource_id=source.id, paths=["a"], fields=["gt"]))

    def state(at=None) -> dict:
        table = _read(meta, source.id, as_of=at) if at else _read(meta, source.id)
        return _values(table, "gt", FieldType.DETECTIONS)

    assert state(after_first) == {"a": first, "b": second}
    assert state(after_other_field) == {"a": first, "b": second}
    assert state(after_rewrite) == {"a": second, "b": first}
    assert state() == {"a": None, "b": first}
    assert _values(_read(meta, source.id, as_of=after_rewrite), "seg", FieldType.SEGMENTATION)["a"] == seg_digest
    # A select item read at its own instant, next to the current value.
    timed = _read(
        meta,
        source.id,
        select=[common_pb2.SelectItem(field="gt"), common_pb2.SelectItem(field="gt", alias="old", as_of=after_first)],
    )
    assert _values(timed, "old", FieldType.DETECTIONS) == {"a": first, "b": second}
    assert _values(timed, "gt", FieldType.DETECTIONS) == {"a": None, "b": first}
    # Object queries over an earlier state read the values the log keeps.
    filtered = _read(meta, source.id, Column("gt", FieldType.DETECTIONS).count() == 2, as_of=after_other_field)
    assert filtered["path"].to_pylist() == ["b"]
    responses = iter(metadata_stub.GetHistory(pb.GetHistoryRequest(datasource_id=source.id, path="a", field="gt")))
    schema = read_schema(next(responses).schema)
    history = pa.Table.from_batches([read_batch(r.record_batch, schema) for r in responses], schema)
    assert history["operation"].to_pylist() == ["set", "set", "delete_metadata"]
    assert L.from_arrow("detections", history["gt"]) == [first, second, None]


def _gt(name: str = "gt", kind: FieldType = FieldType.DETECTIONS) -> Column:
    return Column(name, kind)


def test_object_queries_and_their_combination_with_other_predicates(meta, metadata_stub):
    source = meta.datasource()

    def det(*labels_and_conf):
        return L.Detections(L.Detection(label, (0.1, 0.1, 0.1, 0.1), c) for label, c in labels_and_conf)

    _upsert(
        metadata_stub,
        source.id,
        {
            "three_cars": {"gt": det(("car", 0.9), ("car", 0.8), ("car", None)), "split": "train"},
            "one_car_person": {"gt": det(("car", 0.7), ("person", 0.4)), "split": "val"},
            "confident_person": {"gt": det(("person", 0.95)), "split": "train"},
            "empty": {"gt": det(), "split": "train"},
            "unlabelled": {"split": "train"},
            "cls": {"c": L.Classification("dog", 0.2)},
        },
    )

    def paths(expression):
        return sorted(_read(meta, source.id, expression)["path"].to_pylist())

    gt = _gt()
    assert paths(gt.labels.contains("car")) == ["one_car_person", "three_cars"]
    assert paths(gt.count("car") >= 3) == ["three_cars"]
    assert paths(gt.count() == 0) == ["empty"]
    assert paths(gt.max_confidence("person") < 0.5) == ["one_car_person"]
    assert paths(gt.min_confidence() >= 0.8) == ["confident_person", "three_cars"]
    assert paths((gt.count("car") >= 1) & (Column("split", FieldType.STRING) == "train")) == ["three_cars"]
    assert paths(~gt.labels.contains("car")) == sorted(["cls", "confident_person", "empty", "unlabelled"])
    assert paths(gt.count().isin([0, 2])) == ["empty", "one_car_person"]
    assert paths(_gt("c", FieldType.CLASSIFICATION).labels.contains("dog")) == ["cls"]
    assert paths(_gt("c", FieldType.CLASSIFICATION).max_confidence() < 0.5) == ["cls"]


def test_object_measures_on_a_field_without_objects_are_rejected(meta, metadata_stub):
    source = meta.datasource()
    _upsert(metadata_stub, source.id, {"a": {"n": 1}})
    filter_ = common_pb2.Filter(
        comparison=common_pb2.Comparison(
            field="n",
            op=common_pb2.COMPARISON_OPERATOR_GE,
            value=to_proto_value(1),
            measure=common_pb2.ObjectMeasure(kind=common_pb2.OBJECT_MEASURE_KIND_COUNT),
        )
    )
    with pytest.raises(grpc.RpcError) as excinfo:
        _read(meta, source.id, filter_)
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "has no objects" in excinfo.value.details()


# Random detections and object predicates against a pure-Python evaluation of the same predicates.

LABELS = ["car", "person", "dog"]
ROWS = 40


def _random_rows(seed: int) -> dict[str, L.Detections | None]:
    import random

    rng = random.Random(seed)
    rows = {}
    for i in range(ROWS):
        if i % 9 == 0:
            rows[f"p{i:02d}"] = None
            continue
        rows[f"p{i:02d}"] = L.Detections(
            L.Detection(
                rng.choice(LABELS), (0.1, 0.1, 0.2, 0.2), None if rng.random() < 0.2 else round(rng.random(), 2)
            )
            for _ in range(rng.randint(0, 4))
        )
    return rows


DATA = _random_rows(11)


@pytest.fixture(scope="module")
def loaded(metadata_server):
    from tests.metadata.conftest import MetadataHelper
    from thresher.core.transport import open_channel
    from thresher.v1 import metadata_service_pb2_grpc

    channel = open_channel(metadata_server[0])
    helper = MetadataHelper(metadata_service_pb2_grpc.MetadataServiceStub(channel), "fuzz/labels")
    source = helper.datasource(f"labels-{id(channel)}")
    column = L.to_arrow("detections", list(DATA.values()))
    helper.upload(source.id, pa.table({"path": list(DATA), "gt": column, "i": list(range(ROWS))}))
    yield helper, source.id
    channel.close()


def _measure_value(value: L.Detections | None, kind: str, label: str | None):
    if value is None:
        return None
    chosen = [o for o in value if label is None or o.label == label]
    if kind == "count":
        return len(chosen)
    confidences = [o.confidence for o in chosen if o.confidence is not None]
    if not confidences:
        return None
    return max(confidences) if kind == "max_confidence" else min(confidences)


_OPS = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@st.composite
def object_predicates(draw):
    """(expression, {path: bool}) for one object predicate or a small tree of them."""
    gt = _gt()
    if draw(st.booleans()):
        label = draw(st.sampled_from(LABELS + ["truck"]))
        return gt.labels.contains(label), {
            p: _measure_value(v, "count", label) not in (None, 0) for p, v in DATA.items()
        }
    kind = draw(st.sampled_from(["count", "max_confidence", "min_confidence"]))
    label = draw(st.one_of(st.none(), st.sampled_from(LABELS)))
    op = draw(st.sampled_from(sorted(_OPS)))
    value = draw(st.integers(0, 4)) if kind == "count" else draw(st.sampled_from([0.0, 0.25, 0.5, 0.77, 1.0]))
    measure = getattr(gt, kind)(label)
    expression = {
        "==": measure.__eq__,
        "!=": measure.__ne__,
        "<": measure.__lt__,
        "<=": measure.__le__,
        ">": measure.__gt__,
        ">=": measure.__ge__,
    }[op](value)
    truth = {}
    for path, row in DATA.items():
        got = _measure_value(row, kind, label)
        truth[path] = got is not None and _OPS[op](got, value)
    return expression, truth


@st.composite
def trees(draw, depth: int = 0):
    if depth >= 2 or draw(st.integers(0, 2)) == 0:
        if draw(st.integers(0, 4)) == 0:
            bound = draw(st.integers(0, ROWS))
            return Column("i", FieldType.INT) < bound, {p: i < bound for i, p in enumerate(DATA)}
        return draw(object_predicates())
    shape = draw(st.sampled_from(["and", "or", "not"]))
    left, left_truth = draw(trees(depth + 1))
    if shape == "not":
        return ~left, {p: not t for p, t in left_truth.items()}
    right, right_truth = draw(trees(depth + 1))
    if shape == "and":
        return left & right, {p: left_truth[p] and right_truth[p] for p in DATA}
    return left | right, {p: left_truth[p] or right_truth[p] for p in DATA}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(tree=trees())
def test_random_object_predicates_match_python(loaded, tree):
    helper, datasource_id = loaded
    expression, truth = tree
    got = sorted(_read(helper, datasource_id, expression)["path"].to_pylist())
    assert got == sorted(p for p, t in truth.items() if t)


def test_an_annotation_field_compared_with_a_value_is_rejected(meta, metadata_stub):
    source = meta.datasource()
    _upsert(metadata_stub, source.id, {"a": {"gt": VALUES["det"]}})
    filter_ = common_pb2.Filter(
        comparison=common_pb2.Comparison(
            field="gt", op=common_pb2.COMPARISON_OPERATOR_EQ, value=to_proto_value(VALUES["det"])
        )
    )
    with pytest.raises(grpc.RpcError) as excinfo:
        _read(meta, source.id, filter_)
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "compare a measure" in excinfo.value.details()

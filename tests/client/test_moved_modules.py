"""Old import paths of moved modules: each imports, is the new module itself, and warns once naming the new path."""

import importlib
import json
import subprocess
import sys
import warnings

import pytest

from thresher._moved import MOVED


def _forget(name: str) -> None:
    """Drop the old name (not the new module) so that the next import goes through the alias again."""
    sys.modules.pop(name, None)
    package, _, leaf = name.rpartition(".")
    parent = sys.modules.get(package)
    if parent is not None and leaf in vars(parent) and parent.__name__ == package:
        delattr(parent, leaf)


def _import_or_skip(name: str):
    """The module, or a skip when an optional package it needs is not installed (ray, starlette: extras)."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        if isinstance(error, ModuleNotFoundError) and (error.name or "").startswith("thresher"):
            raise
        pytest.skip(f"{name} needs an optional package: {error}")


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_name_is_the_new_module_and_warns_once(old: str) -> None:
    new = _import_or_skip(MOVED[old])
    _forget(old)
    with pytest.warns(DeprecationWarning, match=rf"^{old} is deprecated: it moved to {MOVED[old]};") as caught:
        aliased = importlib.import_module(old)
    assert aliased is new
    assert sys.modules[old] is new
    assert len([w for w in caught if issubclass(w.category, DeprecationWarning)]) == 1
    assert new.__spec__.name == MOVED[old]  # the module keeps its own spec and name
    assert new.__name__ == MOVED[old]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert importlib.import_module(old) is new  # a second import: no second warning


def test_from_imports_and_attributes_of_old_names_are_the_new_objects() -> None:
    from thresher.core.bag.spec import SPEC_KEY
    from thresher.core.types import FieldType

    with pytest.warns(DeprecationWarning, match="thresher.core.types"):
        _forget("thresher.types")
        from thresher.types import FieldType as OldFieldType
    assert OldFieldType is FieldType
    _forget("thresher.bag.spec")
    import thresher.bag

    with pytest.warns(DeprecationWarning, match="thresher.core.bag.spec"):
        assert thresher.bag.spec.SPEC_KEY is SPEC_KEY  # attribute access on the user-facing package


def test_storage_submodules_follow_their_package() -> None:
    import thresher.core.storage.s3

    _forget("thresher.storage.s3")
    with pytest.warns(DeprecationWarning, match=r"thresher\.storage\.s3 is deprecated: it moved to thresher\.core"):
        import thresher.storage.s3
    assert sys.modules["thresher.storage.s3"] is thresher.core.storage.s3


def test_names_that_never_existed_still_fail() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("thresher.storage.no_such_module")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("thresher.bag.no_such_module")
    import thresher

    with pytest.raises(AttributeError, match="no_such_name"):
        thresher.no_such_name  # noqa: B018


def test_a_fresh_interpreter_warns_once_per_old_name_and_not_for_the_package() -> None:
    # A fresh process: nothing imported yet, so the counts are exact (the whole table, then each name again).
    script = """
import importlib, json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import thresher
    from thresher.bag import DatasetWriter, Loader
    from thresher._moved import MOVED
    quiet = len(caught)
    present = {}
    for old, new in MOVED.items():
        try:
            importlib.import_module(new)
            present[old] = new
        except ImportError:  # an optional package (an extra) is missing: the old name cannot import either
            pass
    caught.clear()
    for _ in range(2):
        for old in present:
            importlib.import_module(old)
    same = all(importlib.import_module(old) is importlib.import_module(new) for old, new in present.items())
    messages = [str(w.message) for w in caught]
    where = {w.filename for w in caught}
print(json.dumps({"quiet": quiet, "messages": messages, "same": same, "where": sorted(where), "moved": len(present)}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    assert report["quiet"] == 0, "import thresher and the user-facing thresher.bag warn about nothing"
    assert report["same"]
    assert len(report["messages"]) == report["moved"]  # once per old name, not once per import
    assert all(" is deprecated: it moved to thresher." in message for message in report["messages"])
    assert report["where"] == ["<string>"]  # the warning points at the importing code, not the import system


def test_an_old_name_reached_as_an_attribute_warns_at_the_caller() -> None:
    import thresher.loader
    from thresher.loader import loader_errors

    _forget("thresher.loader.errors")
    with pytest.warns(DeprecationWarning, match="thresher.loader.loader_errors") as caught:
        assert thresher.loader.errors is loader_errors
    assert caught[0].filename == __file__

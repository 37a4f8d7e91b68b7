"""Dataset specs: ``{key: type}`` with ``T[]`` for sequences, checked and paired with codecs.

``spec.json`` holds the spec with its keys sorted; the sorted order is also the order of the
entries in every ``refs.bag`` record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from thresher.core.bag import files
from thresher.core.bag.bag_errors import CorruptBagError, IncompleteDatasetError, SpecError

SPEC_FILE = "spec.json"
REFS = "refs"
REFS_BAG = REFS + ".bag"
SEQUENCE = "[]"
# Schema metadata of a bag dataset's flight (the flight service writes them, ``thresher.remote_source`` reads them):
# the dataset's spec, and the length of each shard, both JSON.
SPEC_KEY = b"thresher.bag.spec"
SHARD_LENGTHS_KEY = b"thresher.bag.shard_lengths"
# Keys name files, so writers accept only names that are safe and portable as file names.
_KEY = re.compile(r"[a-z_][a-z0-9_\-]*")
_TYPE = re.compile(r"[a-z_][A-Za-z0-9_]*(\[\])?")


def is_sequence(dtype: str) -> bool:
    """Whether a type is a sequence ``T[]``."""
    return dtype.endswith(SEQUENCE)


def base_type(dtype: str) -> str:
    """``T`` for ``T[]``, else the type itself."""
    return dtype[: -len(SEQUENCE)] if is_sequence(dtype) else dtype


def check_spec(spec: Mapping[str, str]) -> dict[str, str]:
    """A writer's spec, validated and sorted by key."""
    if not isinstance(spec, Mapping) or not spec:
        raise SpecError(f"a spec is a non-empty mapping of key to type, got {spec!r}")
    for key, dtype in spec.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key) or key == REFS:
            raise SpecError(
                f"bad key {key!r}: use lowercase letters, digits, _ and -, not starting with a digit, not 'refs'"
            )
        if not isinstance(dtype, str) or not _TYPE.fullmatch(dtype):
            raise SpecError(f"key {key!r} has bad type {dtype!r}: a format name, with [] for a sequence")
    return dict(sorted(spec.items()))


def _safe_key(key: Any) -> bool:
    return isinstance(key, str) and bool(key) and not key.startswith(".") and not set(key) & {"/", "\\", "\0"}


def load_spec(directory: str) -> dict[str, str]:
    """Read ``spec.json``; :class:`IncompleteDatasetError` if missing, :class:`CorruptBagError` if damaged."""
    path = files.join(directory, SPEC_FILE)
    try:
        content = files.read_whole(path)
    except FileNotFoundError:
        raise IncompleteDatasetError(f"{path} is missing: not a dataset, or its writer was never closed") from None
    try:
        spec = json.loads(content)
    except (UnicodeDecodeError, ValueError) as e:
        raise CorruptBagError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(spec, dict) or not spec:
        raise CorruptBagError(f"{path}: not a non-empty JSON object")
    for key, dtype in spec.items():
        if not _safe_key(key) or key == REFS or not isinstance(dtype, str) or not dtype:
            raise CorruptBagError(f"{path}: bad entry {key!r}: {dtype!r}")
    return dict(sorted(spec.items()))


def dump_spec(spec: Mapping[str, str]) -> bytes:
    """``spec.json``'s content, keys sorted as ``granular`` writes them."""
    return json.dumps(dict(sorted(spec.items()))).encode("utf-8")


def codecs(
    spec: Mapping[str, str], table: Mapping[str, Callable[..., Any]] | None, role: str
) -> dict[str, Callable[..., Any] | None]:
    """Key -> encoder or decoder (None: bytes pass through) for ``table`` keyed by base type."""
    if table is None:
        return {key: None for key in spec}
    found: dict[str, Callable[..., Any] | None] = {}
    for key, dtype in spec.items():
        try:
            found[key] = table[base_type(dtype)]
        except KeyError:
            raise SpecError(
                f"key {key!r} has type {dtype!r}, and no {role} is given for {base_type(dtype)!r}"
            ) from None
    return found

"""Vector fields: fixed-dimension float32 or float16 embeddings, shared by the client and the services.

A vector field's dimension and element type are fixed by its first write, like any field's type. The
store records them in the field's stored type name (``vector[128]:float32``); results carry vectors as
an Arrow ``FixedSizeList`` of the field's element type, so ``to_numpy`` turns a column into an
``(n, d)`` array without a copy per row. Both engines keep the elements as 32-bit floats (neither has
a half-precision type); a float16 field is widened on the way in and narrowed on the way out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from thresher.core.errors import FieldTypeMismatchError, InvalidArgumentError

METRICS = ("cosine", "l2", "dot")
DTYPES = {"float32": pa.float32(), "float16": pa.float16()}
MAX_DIMENSION = 65536
_STORED = re.compile(r"^vector\[(\d+)\]:(float32|float16)$")


@dataclass(frozen=True)
class VectorSpec:
    """A vector field's dimension and element type."""

    dimension: int
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if not 0 < self.dimension <= MAX_DIMENSION:
            raise InvalidArgumentError(f"a vector has 1 to {MAX_DIMENSION} elements, not {self.dimension}")
        if self.dtype not in DTYPES:
            raise InvalidArgumentError(f"a vector's elements are float32 or float16, not {self.dtype}")

    @property
    def stored_name(self) -> str:
        """The type name the store keeps for the field."""
        return f"vector[{self.dimension}]:{self.dtype}"

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type of the field in results."""
        return pa.list_(DTYPES[self.dtype], self.dimension)

    @property
    def storage_arrow_type(self) -> pa.DataType:
        """The Arrow type values have on their way into a store: always 32-bit elements."""
        return pa.list_(pa.float32(), self.dimension)

    @classmethod
    def parse(cls, stored: str) -> VectorSpec | None:
        """The spec in a stored type name; None for names of other types."""
        match = _STORED.match(stored)
        return cls(int(match.group(1)), match.group(2)) if match else None


def is_vector_type(data_type: pa.DataType) -> bool:
    """Whether an Arrow column of this type holds vectors: lists (fixed or not) of numbers."""
    # List views arrived in pyarrow 16; an older pyarrow has none to meet.
    is_list_view = getattr(pa.types, "is_list_view", None)
    if not (
        pa.types.is_list(data_type)
        or pa.types.is_large_list(data_type)
        or pa.types.is_fixed_size_list(data_type)
        or (is_list_view is not None and is_list_view(data_type))
    ):
        return False
    value_type = data_type.value_type
    return bool(pa.types.is_floating(value_type) or pa.types.is_integer(value_type) or pa.types.is_null(value_type))


def vector_array(vectors: Any, dtype: str | None = None) -> pa.FixedSizeListArray:
    """A ``FixedSizeList`` array from a 2-D numpy array (one row per datapoint), ready to upload.

    ``dtype`` is float32 or float16; by default float16 input stays float16 and anything else becomes
    float32.
    """
    array = np.asarray(vectors)
    if array.ndim != 2:
        raise InvalidArgumentError(f"vectors must be a 2-D array (one row per datapoint), got shape {array.shape}")
    if dtype is None:
        dtype = "float16" if array.dtype == np.float16 else "float32"
    if dtype not in DTYPES:
        raise InvalidArgumentError(f"a vector's elements are float32 or float16, not {dtype}")
    flat = np.ascontiguousarray(array, dtype=np.dtype(dtype)).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat), array.shape[1])


def to_numpy(column: pa.Array | pa.ChunkedArray, dtype: Any = None) -> np.ndarray:
    """An ``(n, d)`` array of a vector column; rows without a value become NaN rows.

    ``dtype`` defaults to the column's own element type.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if not pa.types.is_fixed_size_list(column.type):
        raise InvalidArgumentError(f"a vector column is a FixedSizeList, not {column.type}")
    dimension = column.type.list_size
    element = column.type.value_type.to_pandas_dtype()
    if column.null_count:
        column = pc.if_else(pc.is_null(column), pa.scalar([np.nan] * dimension, column.type), column)
    values: np.ndarray = column.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(len(column), dimension).astype(dtype or element, copy=False)


def distances(matrix: np.ndarray, query: np.ndarray, metric: str, *, row_norms: np.ndarray | None = None) -> np.ndarray:
    """The distance of each row of ``matrix`` to ``query``, smaller meaning nearer, in float64.

    ``cosine`` is 1 − cosine similarity (a zero vector is at distance 1 from everything), ``l2`` the
    Euclidean distance, ``dot`` 1 − the inner product (as usearch's ``ip``). ``row_norms``, the rows'
    Euclidean norms when the caller keeps them, spares a cosine search half its work.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    query = np.asarray(query, dtype=np.float64)
    if metric == "dot":
        inner: np.ndarray = 1.0 - matrix @ query
        return inner
    if metric == "l2":
        euclidean: np.ndarray = np.sqrt(np.maximum(((matrix - query) ** 2).sum(axis=1), 0.0))
        return euclidean
    if metric == "cosine":
        norms = (np.linalg.norm(matrix, axis=1) if row_norms is None else row_norms) * np.linalg.norm(query)
        with np.errstate(invalid="ignore", divide="ignore"):
            similarity = np.where(norms > 0, (matrix @ query) / np.where(norms > 0, norms, 1.0), 0.0)
        return 1.0 - similarity
    raise InvalidArgumentError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")


def check_query_vector(query: Any, dimension: int | None = None) -> np.ndarray:
    """A query vector as a 1-D float64 array: finite, and of ``dimension`` elements when given."""
    try:
        vector = np.asarray(query, dtype=np.float64)
    except (TypeError, ValueError):
        raise FieldTypeMismatchError(f"a query vector must be numbers, got {type(query).__name__}") from None
    if vector.ndim != 1 or vector.size == 0:
        raise InvalidArgumentError(f"a query vector is one non-empty row of numbers, got shape {vector.shape}")
    if dimension is not None and vector.size != dimension:
        raise InvalidArgumentError(f"the query vector has {vector.size} elements; the field has {dimension}")
    if not np.isfinite(vector).all():
        raise InvalidArgumentError("the query vector holds NaN or infinite elements")
    return vector

"""PostgreSQL read helpers for the store: planner estimates, read without running the query.

ADBC's PostgreSQL driver reads every unparameterised statement through COPY, which EXPLAIN cannot go
through; the estimate's statement turns COPY off for itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

_USE_COPY = "adbc.postgresql.use_copy"


def planned_rows(cursor: Any, sql: str, params: Sequence[Any] = ()) -> int:
    """How many rows PostgreSQL's planner expects ``sql`` to return (from statistics; nothing runs)."""
    cursor.adbc_statement.set_options(**{_USE_COPY: "false"})
    try:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, tuple(params) or None)
        (plan,) = cursor.fetchone()
    finally:
        cursor.adbc_statement.set_options(**{_USE_COPY: "true"})
    if isinstance(plan, (bytes, bytearray)):
        plan = plan.decode()
    parsed = json.loads(plan) if isinstance(plan, str) else plan
    return max(int(parsed[0]["Plan"]["Plan Rows"]), 0)

"""A Flight SQL statement rewritten onto the store's own SQL, so the store runs it where the data is.

The statement is parsed by DuckDB (``json_serialize_sql``, the parser the sandbox's checks use) and
written back out by this module from the parse tree, node by node, for the store's engine (DuckDB or
PostgreSQL). Only nodes on an allowlist are written: plain SELECTs with joins, subqueries, CTEs,
grouping, ordering and limits; comparisons, boolean logic, arithmetic, CASE, casts to scalar types and
a few well-known string and aggregate functions. Anything else (table functions such as
``read_csv``, any other function, a sample, a type or a node this module does not know) makes the
rewrite give up, and the statement runs in the sandbox as before, which refuses what it must. So no
user text reaches the store except string literals, which are re-quoted here, and identifiers, which
are quoted here.

Each table the statement names (``namespace.datasource`` or ``namespace.dataset``, with or without
the catalog ``thresher``) is replaced by a subquery the store itself compiled for that table (its
current state, only live datapoints; a dataset's saved query), under the name the statement used for
it; the caller resolves names, so a namespace the caller may not read resolves to nothing and the
statement goes to the sandbox, which answers "does not exist".

PostgreSQL folds nothing inside double quotes while DuckDB matches names ignoring case, so for
PostgreSQL every identifier is written in lower case (the caller renames the result's columns).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from thresher.core.types import FieldType
from thresher.services.metadata import sql_literals

DUCKDB, POSTGRES = sql_literals.DUCKDB, sql_literals.POSTGRES
# Names of this module's own making; a statement using one is left to the sandbox.
_RESERVED_PREFIX = "_thresher"


class GiveUp(Exception):
    """The statement holds something this module does not rewrite; the sandbox runs it instead."""


@dataclass(frozen=True)
class Relation:
    """A table as the store's own SQL: a SELECT whose columns carry the table's column names."""

    sql: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Rewritten:
    sql: str
    params: list[Any]  # bound in order as $1, $2, ... (DuckDB); empty for PostgreSQL, whose values are literals


# A node of DuckDB's JSON parse tree.
Node = Mapping[str, Any]
# (schema, table) as written, lower case -> the table's relation, or None when it is not visible.
Resolve = Callable[[str, str], "Relation | None"]

_COMPARISONS = {
    "COMPARE_EQUAL": "=",
    "COMPARE_NOTEQUAL": "<>",
    "COMPARE_LESSTHAN": "<",
    "COMPARE_GREATERTHAN": ">",
    "COMPARE_LESSTHANOREQUALTO": "<=",
    "COMPARE_GREATERTHANOREQUALTO": ">=",
    "COMPARE_DISTINCT_FROM": "IS DISTINCT FROM",
    "COMPARE_NOT_DISTINCT_FROM": "IS NOT DISTINCT FROM",
}
_LIKE = {"~~": "LIKE", "!~~": "NOT LIKE", "~~*": "ILIKE", "!~~*": "NOT ILIKE"}
_ARITHMETIC = {"+", "-", "*"}
_AGGREGATES = {"count", "sum", "min", "max", "avg"}
_SCALARS = {"lower", "upper", "length", "abs", "nullif", "starts_with", "prefix", "contains", "ends_with", "suffix"}
# Cast targets: DuckDB spellings (as parsed) -> (DuckDB, PostgreSQL).
_TYPES = {
    "BIGINT": ("BIGINT", "BIGINT"),
    "INT8": ("BIGINT", "BIGINT"),
    "LONG": ("BIGINT", "BIGINT"),
    "INTEGER": ("INTEGER", "INTEGER"),
    "INT": ("INTEGER", "INTEGER"),
    "INT4": ("INTEGER", "INTEGER"),
    "DOUBLE": ("DOUBLE", "DOUBLE PRECISION"),
    "FLOAT8": ("DOUBLE", "DOUBLE PRECISION"),
    "VARCHAR": ("VARCHAR", "TEXT"),
    "TEXT": ("VARCHAR", "TEXT"),
    "STRING": ("VARCHAR", "TEXT"),
    "BOOLEAN": ("BOOLEAN", "BOOLEAN"),
    "BOOL": ("BOOLEAN", "BOOLEAN"),
    "DATE": ("DATE", "DATE"),
    "TIMESTAMPTZ": ("TIMESTAMPTZ", "TIMESTAMPTZ"),
    "TIMESTAMP WITH TIME ZONE": ("TIMESTAMPTZ", "TIMESTAMPTZ"),
}
_JOINS = {"INNER": "JOIN", "LEFT": "LEFT JOIN", "RIGHT": "RIGHT JOIN", "OUTER": "FULL JOIN"}
_INTEGER_TEXT = re.compile(r"-?[0-9]+")
_NUMERIC_TEXT = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")
# Keys of a SELECT node that may hold something; any other key holding something means "give up".
_SELECT_KEYS = {
    "type",
    "query_location",
    "query_location_length",
    "modifiers",
    "cte_map",
    "select_list",
    "from_table",
    "where_clause",
    "group_expressions",
    "group_sets",
    "aggregate_handling",
    "having",
    "sample",
    "qualify",
}


def rewrite(tree: Node, resolve: Resolve, engine: str, parameters: Sequence[Any]) -> Rewritten:
    """``tree`` (one parsed SELECT statement) as SQL for ``engine``; raises ``GiveUp`` where it cannot."""
    statements = tree.get("statements") or []
    if tree.get("error") or len(statements) != 1:
        raise GiveUp("not one statement")
    writer = _Writer(resolve, engine, parameters)
    sql = writer.query(statements[0].get("node") or {}, frozenset())
    return Rewritten(sql, writer.params)


class _Writer:
    def __init__(self, resolve: Resolve, engine: str, parameters: Sequence[Any]) -> None:
        self._resolve = resolve
        self._engine = engine
        self._parameters = parameters
        self.params: list[Any] = []

    # Names ----------------------------------------------------------------------------------------

    def name(self, identifier: object) -> str:
        if not isinstance(identifier, str) or not identifier or "\x00" in identifier:
            raise GiveUp("an empty or odd identifier")
        if identifier.lower().startswith(_RESERVED_PREFIX):
            raise GiveUp("a reserved name")
        if self._engine == POSTGRES:
            identifier = identifier.lower()
        return '"' + identifier.replace('"', '""') + '"'

    # Queries --------------------------------------------------------------------------------------

    def query(self, node: Node, ctes: frozenset[str]) -> str:
        if node.get("type") != "SELECT_NODE":
            raise GiveUp(f"a {node.get('type')} node")
        for key, value in node.items():
            if key not in _SELECT_KEYS and value not in (None, "", [], {}, False):
                raise GiveUp(f"a SELECT with {key}")
        if node.get("sample") or node.get("qualify") or node.get("aggregate_handling") != "STANDARD_HANDLING":
            raise GiveUp("a sample, QUALIFY or GROUP BY ALL")
        parts = []
        entries = (node.get("cte_map") or {}).get("map") or []
        if entries:
            written = []
            for entry in entries:
                value = entry.get("value") or {}
                if value.get("aliases") or value.get("materialized") not in (None, "CTE_MATERIALIZE_DEFAULT"):
                    raise GiveUp("a CTE with column names or materialization")
                name = entry.get("key")
                written.append(f"{self.name(name)} AS ({self.query(value.get('query_node') or {}, ctes)})")
                ctes = ctes | {str(name).lower()}  # later CTEs (and the body) may read earlier ones
            parts.append("WITH " + ", ".join(written))
        modifiers = node.get("modifiers") or []
        distinct = ""
        order, limit = "", ""
        for modifier in modifiers:
            kind = modifier.get("type")
            if kind == "DISTINCT_MODIFIER" and not modifier.get("distinct_on_targets"):
                distinct = "DISTINCT "
            elif kind == "ORDER_MODIFIER":
                order = " ORDER BY " + ", ".join(self.order(item, ctes) for item in modifier.get("orders") or [])
            elif kind == "LIMIT_MODIFIER":
                limit = "".join(
                    f" {word} {self.expression(modifier[key], ctes)}"
                    for key, word in (("limit", "LIMIT"), ("offset", "OFFSET"))
                    if modifier.get(key)
                )
            else:
                raise GiveUp(f"a {kind} modifier")
        select = []
        for item in node.get("select_list") or []:
            text = self.expression(item, ctes)
            select.append(f"{text} AS {self.name(item['alias'])}" if item.get("alias") else text)
        if not select:
            raise GiveUp("an empty select list")
        parts.append("SELECT " + distinct + ", ".join(select))
        source = node.get("from_table") or {"type": "EMPTY"}
        if source.get("type") != "EMPTY":
            parts.append("FROM " + self.table(source, ctes))
        if node.get("where_clause"):
            parts.append("WHERE " + self.expression(node["where_clause"], ctes))
        groups = node.get("group_expressions") or []
        if groups:
            if node.get("group_sets") != [list(range(len(groups)))]:
                raise GiveUp("grouping sets")
            parts.append("GROUP BY " + ", ".join(self.expression(g, ctes) for g in groups))
        elif node.get("group_sets"):
            raise GiveUp("grouping sets")
        if node.get("having"):
            parts.append("HAVING " + self.expression(node["having"], ctes))
        return " ".join(parts) + order + limit

    def order(self, item: Node, ctes: frozenset[str]) -> str:
        direction = {"ORDER_DEFAULT": "ASC", "ASCENDING": "ASC", "DESCENDING": "DESC"}.get(str(item.get("type")))
        # DuckDB puts NULLs last either way unless told; PostgreSQL puts them first when descending,
        # so the placement is always written out.
        nulls = {
            "ORDER_DEFAULT": "NULLS LAST",
            "NULLS_LAST": "NULLS LAST",
            "NULLS LAST": "NULLS LAST",
            "NULLS_FIRST": "NULLS FIRST",
            "NULLS FIRST": "NULLS FIRST",
        }.get(str(item.get("null_order")))
        if direction is None or nulls is None:
            raise GiveUp("an unknown ordering")
        return f"{self.expression(item.get('expression') or {}, ctes)} {direction} {nulls}"

    def table(self, ref: Node, ctes: frozenset[str]) -> str:
        kind = ref.get("type")
        if ref.get("sample") or ref.get("column_name_alias"):
            raise GiveUp("a sampled table or column aliases")
        if kind == "BASE_TABLE":
            if ref.get("at_clause"):
                raise GiveUp("an AT clause")
            catalog, schema, table = (
                (ref.get("catalog_name") or ""),
                (ref.get("schema_name") or ""),
                ref.get("table_name") or "",
            )
            alias = ref.get("alias") or table
            if not schema and not catalog and table.lower() in ctes:
                return f"{self.name(table)} AS {self.name(alias)}"
            if not schema or catalog.lower() not in ("", "thresher"):
                raise GiveUp("a table outside the namespaces")
            relation = self._resolve(schema.lower(), table.lower())
            if relation is None:
                raise GiveUp("a table the caller cannot see")
            return f"({relation.sql}) AS {self.name(alias)}"
        if kind == "SUBQUERY":
            if not ref.get("alias"):
                raise GiveUp("a subquery without a name")
            return f"({self.statement(ref.get('subquery') or {}, ctes)}) AS {self.name(ref['alias'])}"
        if kind == "JOIN":
            known = {
                "type",
                "query_location",
                "query_location_length",
                "alias",
                "sample",
                "left",
                "right",
                "condition",
                "join_type",
                "ref_type",
                "using_columns",
                "is_implicit",
                "delim_flipped",
                "duplicate_eliminated_columns",
                "nearest_count",
                "nearest_order_type",
                "nearest_approx",
                "ranking_expression",
            }
            if any(key not in known and value not in (None, "", [], {}, False) for key, value in ref.items()):
                raise GiveUp("a join with something unknown")
            if (
                ref.get("alias")
                or ref.get("ranking_expression")
                or ref.get("duplicate_eliminated_columns")
                or ref.get("delim_flipped")
            ):
                raise GiveUp("an unusual join")
            left, right = self.table(ref.get("left") or {}, ctes), self.table(ref.get("right") or {}, ctes)
            if ref.get("ref_type") == "CROSS":
                return f"{left} CROSS JOIN {right}"
            join = _JOINS.get(str(ref.get("join_type")))
            if ref.get("ref_type") != "REGULAR" or join is None:
                raise GiveUp("a NATURAL, ASOF, SEMI or other join")
            if ref.get("using_columns"):
                if ref.get("condition"):
                    raise GiveUp("a join with both USING and ON")
                return f"{left} {join} {right} USING ({', '.join(self.name(c) for c in ref['using_columns'])})"
            if not ref.get("condition"):
                raise GiveUp("a join without a condition")
            return f"{left} {join} {right} ON {self.expression(ref['condition'], ctes)}"
        raise GiveUp(f"a {kind} table reference")

    def statement(self, statement: Node, ctes: frozenset[str]) -> str:
        return self.query(statement.get("node") or {}, ctes)

    # Expressions ----------------------------------------------------------------------------------

    def expression(self, e: Node, ctes: frozenset[str]) -> str:
        kind, cls = e.get("type"), e.get("class")

        def ex(child: Node | None) -> str:
            return self.expression(child or {}, ctes)

        if cls == "COLUMN_REF":
            names = e.get("column_names") or []
            if not 1 <= len(names) <= 2:
                raise GiveUp("a column named with more than a table")
            return ".".join(self.name(n) for n in names)
        if cls == "STAR":
            if any(
                value not in (None, "", [], {}, False)
                for key, value in e.items()
                if key not in ("class", "type", "alias", "relation_name", "query_location", "query_location_length")
            ):
                raise GiveUp("a STAR with EXCLUDE, REPLACE, COLUMNS or the like")
            return f"{self.name(e['relation_name'])}.*" if e.get("relation_name") else "*"
        if cls == "CONSTANT":
            return self.constant(e.get("literal") or {})
        if cls == "PARAMETER":
            return self.parameter(e.get("identifier"))
        if cls == "COMPARISON" and kind in _COMPARISONS:
            return f"({ex(e.get('left'))} {_COMPARISONS[kind]} {ex(e.get('right'))})"
        if cls == "CONJUNCTION" and kind in ("CONJUNCTION_AND", "CONJUNCTION_OR"):
            children = [ex(c) for c in e.get("children") or []]
            if not children:
                raise GiveUp("an empty conjunction")
            return "(" + (" AND " if kind == "CONJUNCTION_AND" else " OR ").join(children) + ")"
        if cls == "OPERATOR":
            children = [ex(c) for c in e.get("children") or []]
            if kind == "OPERATOR_NOT" and len(children) == 1:
                return f"(NOT {children[0]})"
            if kind == "OPERATOR_IS_NULL" and len(children) == 1:
                return f"({children[0]} IS NULL)"
            if kind == "OPERATOR_IS_NOT_NULL" and len(children) == 1:
                return f"({children[0]} IS NOT NULL)"
            if kind in ("COMPARE_IN", "COMPARE_NOT_IN") and len(children) >= 2:
                word = "IN" if kind == "COMPARE_IN" else "NOT IN"
                return f"({children[0]} {word} ({', '.join(children[1:])}))"
            if kind == "OPERATOR_COALESCE" and children:
                return f"COALESCE({', '.join(children)})"
            raise GiveUp(f"operator {kind}")
        if cls == "BETWEEN":
            return f"({ex(e.get('input'))} BETWEEN {ex(e.get('lower'))} AND {ex(e.get('upper'))})"
        if cls == "CASE":
            checks = " ".join(
                f"WHEN {ex(c.get('when_expr'))} THEN {ex(c.get('then_expr'))}" for c in e.get("case_checks") or []
            )
            if not checks:
                raise GiveUp("an empty CASE")
            otherwise = f" ELSE {ex(e['else_expr'])}" if e.get("else_expr") else ""
            return f"(CASE {checks}{otherwise} END)"
        if cls == "CAST":
            return self.cast(e, ctes)
        if cls == "SUBQUERY":
            body = self.statement(e.get("subquery") or {}, ctes)
            sub = e.get("subquery_type")
            if sub == "SCALAR":
                return f"({body})"
            if sub == "EXISTS":
                return f"(EXISTS ({body}))"
            if sub == "NOT_EXISTS":
                return f"(NOT EXISTS ({body}))"
            if sub == "ANY" and e.get("comparison_type") == "COMPARE_EQUAL" and e.get("child"):
                return f"({ex(e['child'])} IN ({body}))"
            raise GiveUp(f"a {sub} subquery")
        if cls == "FUNCTION":
            return self.function(e, ctes)
        raise GiveUp(f"a {cls} expression")

    def constant(self, literal: Node) -> str:
        kind, text = literal.get("kind"), literal.get("text")
        if kind == "NULL_LITERAL":
            return "NULL"
        if not isinstance(text, str):
            raise GiveUp("a constant without text")
        if kind in ("INTEGER", "BIGINT", "HUGEINT", "SMALLINT", "TINYINT") and _INTEGER_TEXT.fullmatch(text):
            return f"({text})" if text.startswith("-") else text
        if kind in ("NUMERIC", "DECIMAL", "DOUBLE") and _NUMERIC_TEXT.fullmatch(text):
            return f"({text})" if text.startswith("-") else text
        if kind in ("STRING", "VARCHAR"):
            if "\x00" in text:
                raise GiveUp("a NUL in a string")
            return sql_literals.literal(text, FieldType.STRING, self._engine)
        if kind == "BOOLEAN" and text.lower() in ("true", "false"):
            return text.upper()
        raise GiveUp(f"a {kind} constant")

    def parameter(self, identifier: object) -> str:
        if (
            not isinstance(identifier, str)
            or not identifier.isdigit()
            or not 0 < int(identifier) <= len(self._parameters)
        ):
            raise GiveUp("a parameter without a value")
        value = self._parameters[int(identifier) - 1]
        kinds = (
            (bool, FieldType.BOOL),
            (int, FieldType.INT),
            (float, FieldType.FLOAT),
            (str, FieldType.STRING),
            (dt.datetime, FieldType.DATETIME),
        )
        kind = next((k for t, k in kinds if isinstance(value, t)), None)
        if value is not None and kind is None:
            raise GiveUp("a parameter of another type")
        if kind is FieldType.STRING and "\x00" in value:
            raise GiveUp("a NUL in a parameter")
        if kind is FieldType.DATETIME and value.tzinfo is None:
            raise GiveUp("a naive datetime parameter")
        if self._engine == DUCKDB:
            self.params.append(value)
            return f"${len(self.params)}"
        if value is None or kind is None:
            return "NULL"
        if kind is FieldType.INT and not -(2**63) <= value < 2**63:
            raise GiveUp("an integer parameter past 64 bits")
        return sql_literals.literal(value, kind, self._engine)

    def cast(self, e: Node, ctes: frozenset[str]) -> str:
        target = e.get("type_expr") or {}
        if (
            e.get("try_cast")
            or target.get("class") != "TYPE"
            or target.get("children")
            or target.get("schema")
            or target.get("catalog")
        ):
            raise GiveUp("a TRY_CAST or a cast to a parameterised type")
        spelled = _TYPES.get(str(target.get("type_name", "")).upper())
        if spelled is None:
            raise GiveUp(f"a cast to {target.get('type_name')}")
        return f"CAST({self.expression(e.get('child') or {}, ctes)} AS {spelled[self._engine == POSTGRES]})"

    def function(self, e: Node, ctes: frozenset[str]) -> str:
        name = str(e.get("function_name", "")).lower()
        if e.get("schema") or e.get("catalog") or e.get("export_state") or ((e.get("order_bys") or {}).get("orders")):
            raise GiveUp("a qualified, ordered or exported function")
        arguments = e.get("arguments")
        if arguments is None:
            arguments = [{"expression": child} for child in e.get("children") or []]
        if any(argument.get("name") for argument in arguments):
            raise GiveUp("a named argument")
        args = [self.expression(argument.get("expression") or {}, ctes) for argument in arguments]
        distinct = "DISTINCT " if e.get("distinct") else ""
        aggregate = name in _AGGREGATES or name == "count_star"
        if (distinct or e.get("filter")) and not aggregate:
            raise GiveUp("DISTINCT or FILTER on a scalar function")
        filtered = f" FILTER (WHERE {self.expression(e['filter'], ctes)})" if e.get("filter") else ""
        postgres = self._engine == POSTGRES
        if e.get("is_operator"):
            if name in _ARITHMETIC and len(args) == 2:
                return f"({args[0]} {name} {args[1]})"
            if name in ("-", "+") and len(args) == 1:
                return f"({name}{args[0]})"
            if name == "/" and len(args) == 2:
                # DuckDB divides in floating point, integers included; PostgreSQL would truncate them.
                return f"(CAST({args[0]} AS DOUBLE PRECISION) / {args[1]})" if postgres else f"({args[0]} / {args[1]})"
            if name == "||" and len(args) == 2:
                return f"({args[0]} || {args[1]})"
            if name in _LIKE and len(args) == 2:
                # DuckDB's LIKE has no escape character; PostgreSQL's is the backslash unless told.
                escape = " ESCAPE ''" if postgres else ""
                return f"({args[0]} {_LIKE[name]} {args[1]}{escape})"
            raise GiveUp(f"operator {name}")
        if name == "count_star" and not args and not distinct:
            return f"count(*){filtered}"
        if aggregate and len(args) == 1:
            if name == "avg" and postgres:
                # DuckDB's average is a double for every numeric input; PostgreSQL's is numeric for integers.
                return f"avg({distinct}CAST({args[0]} AS DOUBLE PRECISION)){filtered}"
            return f"{name}({distinct}{args[0]}){filtered}"
        if name not in _SCALARS:
            raise GiveUp(f"function {name}")
        if name in ("lower", "upper", "length", "abs") and len(args) == 1:
            return f"{name}({args[0]})"
        if name == "nullif" and len(args) == 2:
            return f"NULLIF({args[0]}, {args[1]})"
        if name in ("starts_with", "prefix") and len(args) == 2:
            return f"starts_with({args[0]}, {args[1]})"
        if name == "contains" and len(args) == 2:
            return f"(strpos({args[0]}, {args[1]}) > 0)" if postgres else f"contains({args[0]}, {args[1]})"
        if name in ("ends_with", "suffix") and len(args) == 2:
            return (
                f"(right({args[0]}, length({args[1]})) = {args[1]})" if postgres else f"ends_with({args[0]}, {args[1]})"
            )
        raise GiveUp(f"function {name} with {len(args)} arguments")


def base_tables(tree: Node) -> Iterator[tuple[str, str]]:
    """The (schema, table) names, lower case, of every table reference with a schema in ``tree``."""
    from thresher.services.metadata.sql.sandbox import nodes

    for node in nodes(tree):
        if node.get("type") == "BASE_TABLE" and node.get("schema_name"):
            yield str(node["schema_name"]).lower(), str(node.get("table_name", "")).lower()

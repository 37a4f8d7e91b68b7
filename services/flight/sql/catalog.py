"""Flight SQL's catalog results (catalogs, schemas, tables, table types) and its SqlInfo table.

The column layouts are the protocol's; the content comes from the metadata service's list of SQL
tables: one catalog (``thresher``), one schema per namespace, datasources as TABLEs and saved
datasets as VIEWs.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterable

import pyarrow as pa

from thresher.flight_sql_protocol import flight_sql_pb2 as fsql
from thresher.v1 import metadata_service_pb2 as mpb

CATALOG = "thresher"  # the name the SQL engine gives its database, so thresher."owner/name".table resolves
TABLE_TYPES = {mpb.SQL_TABLE_KIND_DATASOURCE: "TABLE", mpb.SQL_TABLE_KIND_DATASET: "VIEW"}

CATALOGS_SCHEMA = pa.schema([pa.field("catalog_name", pa.utf8(), nullable=False)])
DB_SCHEMAS_SCHEMA = pa.schema(
    [pa.field("catalog_name", pa.utf8()), pa.field("db_schema_name", pa.utf8(), nullable=False)]
)
TABLES_SCHEMA = pa.schema(
    [
        pa.field("catalog_name", pa.utf8()),
        pa.field("db_schema_name", pa.utf8()),
        pa.field("table_name", pa.utf8(), nullable=False),
        pa.field("table_type", pa.utf8(), nullable=False),
    ]
)
TABLES_WITH_SCHEMA_SCHEMA = TABLES_SCHEMA.append(pa.field("table_schema", pa.binary(), nullable=False))
TABLE_TYPES_SCHEMA = pa.schema([pa.field("table_type", pa.utf8(), nullable=False)])

_SQL_INFO_VALUE = pa.dense_union(
    [
        pa.field("string_value", pa.utf8()),
        pa.field("bool_value", pa.bool_()),
        pa.field("bigint_value", pa.int64()),
        pa.field("int32_bitmask", pa.int32()),
        pa.field("string_list", pa.list_(pa.utf8())),
        pa.field("int32_to_int32_list_map", pa.map_(pa.int32(), pa.list_(pa.int32()))),
    ]
)
SQL_INFO_SCHEMA = pa.schema(
    [pa.field("info_name", pa.uint32(), nullable=False), pa.field("value", _SQL_INFO_VALUE, nullable=False)]
)
_STRING, _BOOL, _INT32 = 0, 1, 3


def _version() -> str:
    try:
        return importlib.metadata.version("thresher")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _sql_info_values() -> dict[int, tuple[int, object]]:
    """SqlInfo id → (union member, value); ids and meanings are the protocol's SqlInfo enum."""
    return {
        0: (_STRING, "Thresher"),  # FLIGHT_SQL_SERVER_NAME
        1: (_STRING, _version()),  # FLIGHT_SQL_SERVER_VERSION
        2: (_STRING, pa.__version__),  # FLIGHT_SQL_SERVER_ARROW_VERSION
        3: (_BOOL, True),  # FLIGHT_SQL_SERVER_READ_ONLY
        4: (_BOOL, True),  # FLIGHT_SQL_SERVER_SQL
        5: (_BOOL, False),  # FLIGHT_SQL_SERVER_SUBSTRAIT
        8: (_INT32, 0),  # FLIGHT_SQL_SERVER_TRANSACTION: none
        9: (_BOOL, False),  # FLIGHT_SQL_SERVER_CANCEL
        504: (_STRING, '"'),  # SQL_IDENTIFIER_QUOTE_CHAR
        531: (_STRING, "catalog"),  # SQL_CATALOG_TERM
        529: (_STRING, "schema"),  # SQL_SCHEMA_TERM
    }


def sql_info(command: fsql.CommandGetSqlInfo) -> pa.Table:
    """The requested SqlInfo rows (all known ones when none are named); unknown ids are left out."""
    known = _sql_info_values()
    ids = [i for i in command.info if i in known] if command.info else sorted(known)
    members: dict[int, list[object]] = {member: [] for member in range(len(_SQL_INFO_VALUE))}
    type_ids: list[int] = []
    offsets: list[int] = []
    for info_id in ids:
        member, value = known[info_id]
        type_ids.append(member)
        offsets.append(len(members[member]))
        members[member].append(value)
    children = [pa.array(members[i], type=_SQL_INFO_VALUE.field(i).type) for i in range(len(_SQL_INFO_VALUE))]
    values = pa.UnionArray.from_dense(
        pa.array(type_ids, pa.int8()),
        pa.array(offsets, pa.int32()),
        children,
        [f.name for f in _SQL_INFO_VALUE],
        list(range(len(_SQL_INFO_VALUE))),
    )
    return pa.Table.from_arrays([pa.array(ids, pa.uint32()), values], schema=SQL_INFO_SCHEMA)


def like(pattern: str | None) -> re.Pattern[str] | None:
    """The regular expression of a Flight SQL filter pattern (``%`` any run, ``_`` one character)."""
    if not pattern:
        return None
    parts = ("." * (c == "_") or ".*" * (c == "%") or re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _matches(pattern: re.Pattern[str] | None, text: str) -> bool:
    return pattern is None or pattern.fullmatch(text) is not None


def _in_catalog(command: fsql.CommandGetDbSchemas | fsql.CommandGetTables) -> bool:
    return not command.HasField("catalog") or command.catalog == CATALOG


def catalogs() -> pa.Table:
    return pa.Table.from_pydict({"catalog_name": [CATALOG]}, schema=CATALOGS_SCHEMA)


def db_schemas(command: fsql.CommandGetDbSchemas, tables: Iterable[mpb.SqlTable]) -> pa.Table:
    """Schemas matching the command: the namespaces that hold a table."""
    pattern = like(command.db_schema_filter_pattern if command.HasField("db_schema_filter_pattern") else None)
    names = sorted({t.namespace for t in tables}) if _in_catalog(command) else []
    names = [n for n in names if _matches(pattern, n)]
    return pa.Table.from_pydict(
        {"catalog_name": [CATALOG] * len(names), "db_schema_name": names}, schema=DB_SCHEMAS_SCHEMA
    )


def tables(command: fsql.CommandGetTables, found: Iterable[mpb.SqlTable]) -> pa.Table:
    """Tables matching the command, ordered as the protocol asks, with schemas if it asks for them."""
    schema_pattern = like(command.db_schema_filter_pattern if command.HasField("db_schema_filter_pattern") else None)
    table_pattern = like(command.table_name_filter_pattern if command.HasField("table_name_filter_pattern") else None)
    types = set(command.table_types)
    rows = sorted(
        (
            t
            for t in found
            if _in_catalog(command)
            and _matches(schema_pattern, t.namespace)
            and _matches(table_pattern, t.name)
            and (not types or TABLE_TYPES[t.kind] in types)
        ),
        key=lambda t: (t.namespace, t.name, TABLE_TYPES[t.kind]),
    )
    columns: dict[str, list[str] | list[bytes]] = {
        "catalog_name": [CATALOG] * len(rows),
        "db_schema_name": [t.namespace for t in rows],
        "table_name": [t.name for t in rows],
        "table_type": [TABLE_TYPES[t.kind] for t in rows],
    }
    if not command.include_schema:
        return pa.Table.from_pydict(columns, schema=TABLES_SCHEMA)
    columns["table_schema"] = [t.schema for t in rows]
    return pa.Table.from_pydict(columns, schema=TABLES_WITH_SCHEMA_SCHEMA)


def table_types() -> pa.Table:
    return pa.Table.from_pydict({"table_type": sorted(set(TABLE_TYPES.values()))}, schema=TABLE_TYPES_SCHEMA)


def result_schema(command: CatalogCommand) -> pa.Schema:
    """The fixed result schema of a catalog command."""
    if isinstance(command, fsql.CommandGetTables):
        return TABLES_WITH_SCHEMA_SCHEMA if command.include_schema else TABLES_SCHEMA
    return {
        fsql.CommandGetCatalogs: CATALOGS_SCHEMA,
        fsql.CommandGetDbSchemas: DB_SCHEMAS_SCHEMA,
        fsql.CommandGetTableTypes: TABLE_TYPES_SCHEMA,
        fsql.CommandGetSqlInfo: SQL_INFO_SCHEMA,
    }[type(command)]


CATALOG_COMMANDS = (
    fsql.CommandGetCatalogs,
    fsql.CommandGetDbSchemas,
    fsql.CommandGetTables,
    fsql.CommandGetTableTypes,
    fsql.CommandGetSqlInfo,
)
CatalogCommand = (
    fsql.CommandGetCatalogs
    | fsql.CommandGetDbSchemas
    | fsql.CommandGetTables
    | fsql.CommandGetTableTypes
    | fsql.CommandGetSqlInfo
)

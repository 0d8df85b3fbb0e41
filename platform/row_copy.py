"""Writing many rows in one go: ``COPY`` on PostgreSQL, ``executemany`` elsewhere.

Imports write their records with it, and the audit log its entries when a change
writes several (imports, bulk writes, cascades).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Table, insert

if TYPE_CHECKING:  # a SQLite process never loads the PostgreSQL driver (about 9 MiB)
    import psycopg


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys): ``COPY`` on PostgreSQL, else ``executemany``.

    Values go through the columns' own bind processors first (JSON to text,
    timestamps to UTC), exactly as an INSERT through SQLAlchemy would send them.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    names = list(rows[0])
    dialect = conn.dialect
    processors = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
    quote = conn.dialect.identifier_preparer.quote
    statement = (
        f"COPY {qualified_name(conn, table)} ({', '.join(quote(n) for n in names)}) FROM STDIN"
    )
    raw = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(
                [row[n] if p is None else p(row[n]) for n, p in zip(names, processors, strict=True)]
            )


def qualified_name(conn: Connection, table: Table) -> str:
    """The table's name as PostgreSQL knows it (the ``env`` placeholder translated)."""
    translate = conn.get_execution_options().get("schema_translate_map") or {}
    schema = translate.get(table.schema, table.schema)
    quote = conn.dialect.identifier_preparer.quote
    return f"{quote(schema)}.{quote(table.name)}" if schema else quote(table.name)

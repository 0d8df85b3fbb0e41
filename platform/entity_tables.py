"""SQLAlchemy tables built from entity documents (schema placeholder ``env``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, MetaData, Table

from formloom.engine.entities import EntityDoc
from formloom.engine.entities.changes import (
    ColumnDef,
    column_of,
    has_column,
    identifier,
    junction_table_name,
)
from formloom.platform.column_types import sql_type
from formloom.platform.tables import ENV, BigId, UtcDateTime


def system_columns() -> list[Column[object]]:
    """The columns every entity table has, in order."""
    return [
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
        Column("created_by", BigInteger, nullable=True),
        Column("updated_by", BigInteger, nullable=True),
        Column("owner_id", BigInteger, nullable=True),
        Column("version", Integer, nullable=False, server_default="1"),
        Column("deleted_at", UtcDateTime(), nullable=True),
    ]


def owner_index_name(table: str) -> str:
    """The system index on (owner_id, id) of every entity table (``sx_``: no user index
    can have the name)."""
    return identifier(f"sx_{table}__owner")


def user_column(
    column: ColumnDef, *, schema: str | None = ENV, with_fk: bool = True
) -> Column[object]:
    """A user column; lookups get a foreign key to the target entity's id (unless ``with_fk``).

    Every user column is nullable in the database: `required` is enforced by the
    records service, so adding a required field to a table with rows stays instant.
    """
    args: list[ForeignKey] = []
    if column.storage.references and with_fk:
        target = f"{column.storage.references}.id"
        if schema:
            target = f"{schema}.{target}"
        args.append(ForeignKey(target, name=fk_name(column)))
    return Column(column.name, sql_type(column.storage), *args, nullable=True)


def fk_name(column: ColumnDef) -> str:
    """The foreign key's name: after the column and its target, shortened like index names."""
    return identifier(f"fk__{column.name}__{column.storage.references}")


def entity_table(document: EntityDoc, metadata: MetaData | None = None) -> Table:
    """The table of an entity, including the columns of retired (soft-removed) fields."""
    metadata = metadata or MetaData()
    columns = [user_column(column_of(f)) for f in document.fields if has_column(f)]
    columns += [
        user_column(column_of(r.field)) for r in document.retired_fields if has_column(r.field)
    ]
    return Table(document.name, metadata, *system_columns(), *columns, schema=ENV)


def junction_columns(
    entity: str, field: str, target: str, *, fk_schema: str | None, with_fks: bool
) -> list[Column[object]]:
    """The columns of a multi-lookup's junction table: (record_id, target_id) and ``position``.

    With ``with_fks`` both ids get a foreign key that deletes the row with its record
    (a purge of either side needs no extra step); ``fk_schema`` qualifies their targets.
    """
    name = junction_table_name(entity, field)

    def ref(table: str, side: str) -> list[ForeignKey]:
        if not with_fks:
            return []
        qualified = f"{fk_schema}.{table}.id" if fk_schema else f"{table}.id"
        return [ForeignKey(qualified, name=identifier(f"fk__{name}__{side}"), ondelete="CASCADE")]

    return [
        Column("record_id", BigId, *ref(entity, "record"), primary_key=True),
        Column("target_id", BigId, *ref(target, "target"), primary_key=True),
        Column("position", Integer, nullable=False),
    ]


def junction_index(entity: str, field: str) -> str:
    """The name of the junction table's index on ``target_id``."""
    return identifier(f"ix_{junction_table_name(entity, field)}__target")


def junction_table(entity: str, field: str, target: str) -> Table:
    """The junction table of multi-lookup ``field`` (schema placeholder ``env``, no FKs)."""
    columns = junction_columns(entity, field, target, fk_schema=None, with_fks=False)
    return Table(junction_table_name(entity, field), MetaData(), *columns, schema=ENV)

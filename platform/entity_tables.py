"""SQLAlchemy tables built from entity documents (schema placeholder ``env``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, MetaData, Table

from formloom.engine.entities import EntityDoc
from formloom.engine.entities.changes import ColumnDef, column_of, identifier
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
    columns = [user_column(column_of(f)) for f in document.fields]
    columns += [user_column(column_of(r.field)) for r in document.retired_fields]
    return Table(document.name, metadata, *system_columns(), *columns, schema=ENV)

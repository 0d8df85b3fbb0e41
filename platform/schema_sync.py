"""Apply an entity plan to the database with Alembic operations.

Runs inside the caller's transaction (the same one that writes the metadata),
so a failure anywhere leaves tables and metadata exactly as they were. Checks
that need data run just before their operation: duplicates block a unique
index, and values a lossy conversion would change block it unless forced. All
such problems are collected and reported together.

Decimals on SQLite are scaled integers (:class:`~formloom.platform.column_types.ExactDecimal`):
a conversion from or to a decimal column moves the values through Python there (exact,
rounded half up like PostgreSQL's ``round``), and :func:`upgrade_decimal_columns` turns
the ``NUMERIC(p,s)`` decimal columns of databases created before into scaled ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    MetaData,
    Numeric,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy import (
    column as sa_column,
)
from sqlalchemy.exc import DBAPIError

from formloom.engine.entities.changes import (
    AddColumn,
    ColumnDef,
    ConvertColumn,
    CreateIndex,
    CreateJunction,
    CreateTable,
    DropColumn,
    DropIndex,
    DropJunction,
    DropTable,
    EntityPlan,
    Operation,
    PhysicalIndex,
    RecheckValues,
    RenameColumn,
    column_of,
    has_column,
    junction_table_name,
    physical_indexes,
)
from formloom.engine.entities.model import EntityDoc
from formloom.engine.errors import Issue
from formloom.engine.fields import FieldValueError, Storage, field_types
from formloom.engine.fields.conversion import Conversion, LossCheck
from formloom.platform.column_types import SCALED_DECIMAL, sql_type
from formloom.platform.database import Workspace
from formloom.platform.entity_tables import (
    fk_name,
    junction_columns,
    junction_index,
    owner_index_name,
    system_columns,
    user_column,
)
from formloom.platform.tables import meta_document, meta_version

#: Called after every operation; tests use it to inject failures between DDL steps.
Observer = Callable[[Operation], None]
MAX_LISTED = 10
#: The PostgreSQL extension behind trigram (substring search) indexes.
TRIGRAM_EXTENSION = "pg_trgm"
#: The condition of partial indexes that hold live records only (``PhysicalIndex.live_only``).
LIVE = text("deleted_at IS NULL")
log = logging.getLogger(__name__)


@dataclass
class SchemaSync:
    """Carries out entity plans on one connection, for one environment."""

    conn: Connection
    workspace: Workspace
    env: str
    force: bool = False
    observer: Observer | None = None
    issues: list[Issue] = field(default_factory=list)
    _deferred_fks: list[tuple[str, ColumnDef]] = field(default_factory=list)
    _refused: set[tuple[str, str]] = field(default_factory=set)
    _deferred_junctions: list[CreateJunction] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Alembic is imported here, when metadata is published, not when a server starts:
        # it takes about 10 MiB that a process serving records never needs.
        from alembic.operations import Operations
        from alembic.runtime.migration import MigrationContext

        self.schema = self.workspace.env_schema(self.env)
        self.sqlite = self.workspace.is_sqlite
        self.ops = Operations(MigrationContext.configure(self.conn))

    def apply(self, plan: EntityPlan) -> None:
        for operation in plan.operations:
            getattr(self, "_" + type(operation).__name__)(operation)
            if self.observer is not None:
                self.observer(operation)

    def finish(self) -> None:
        """Create foreign keys and junction tables deferred to the end of the batch (PostgreSQL)."""
        for junction in self._deferred_junctions:
            self._create_junction(junction)
        self._deferred_junctions.clear()
        for table, column in self._deferred_fks:
            assert column.storage.references is not None
            self.ops.create_foreign_key(
                fk_name(column),
                table,
                column.storage.references,
                [column.name],
                ["id"],
                source_schema=self.schema,
                referent_schema=self.schema,
            )
        self._deferred_fks.clear()

    def references_to(self, table: str) -> list[tuple[str, str]]:
        """(table, column) of every foreign key of another table that points at ``table``."""
        inspector = inspect(self.conn)
        found = inspector.get_multi_foreign_keys(schema=self.schema)
        return [
            (other, column)
            for (_schema, other), foreign_keys in sorted(found.items())
            if other != table
            for fk in foreign_keys
            if fk["referred_table"] == table
            for column in fk["constrained_columns"]
        ]

    def _column(self, table: str, column: ColumnDef) -> Column[object]:
        """A user column; where its lookup's foreign key goes depends on the database.

        PostgreSQL adds foreign keys at the end of the batch (tables may look each
        other up). SQLite cannot add a constraint to an existing table, so a lookup's
        foreign key is declared in its column (``ADD COLUMN ... REFERENCES``): a column
        constraint that ``DROP COLUMN`` removes with the column, where a table-level
        constraint would force a table rebuild, which fails while other rows point at
        the table.
        """
        if column.storage.references and not self.sqlite:
            self._deferred_fks.append((table, column))
            return user_column(column, with_fk=False)
        return user_column(column, schema=None)

    def _CreateTable(self, op: CreateTable) -> None:
        """SQLite: lookup columns are added after the table (see :meth:`_column`).

        Every table gets an index on (owner_id, id) of its live records: record
        scopes (own, team) filter on the owner, a scoped list pages through it in
        id order, and a scoped count reads the index alone.
        """
        added_later = [c for c in op.columns if self.sqlite and c.storage.references]
        columns = [self._column(op.table, c) for c in op.columns if c not in added_later]
        self.ops.create_table(op.table, *system_columns(), *columns, schema=self.schema)
        self.ops.create_index(
            owner_index_name(op.table),
            op.table,
            ["owner_id", "id"],
            schema=self.schema,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        )
        for column in added_later:
            self._add_column(op.table, column)

    def _CreateJunction(self, op: CreateJunction) -> None:
        """SQLite creates it now; PostgreSQL at the end of the batch, when its target exists."""
        if self.sqlite:
            self._create_junction(op)
        else:
            self._deferred_junctions.append(op)

    def _create_junction(self, op: CreateJunction) -> None:
        """Create the table unless a soft-removed field of the same name left it."""
        name = junction_table_name(op.table, op.field)
        if inspect(self.conn).has_table(name, schema=self.schema):
            return
        columns = junction_columns(
            op.table,
            op.field,
            op.target,
            fk_schema=self.schema,
            with_fks=True,
        )
        self.ops.create_table(name, *columns, schema=self.schema)
        index = junction_index(op.table, op.field)
        self.ops.create_index(index, name, ["target_id"], schema=self.schema)

    def _DropJunction(self, op: DropJunction) -> None:
        name = junction_table_name(op.table, op.field)
        if inspect(self.conn).has_table(name, schema=self.schema):
            self.ops.drop_table(name, schema=self.schema)

    def _DropTable(self, op: DropTable) -> None:
        self.ops.drop_table(op.table, schema=self.schema)

    def _AddColumn(self, op: AddColumn) -> None:
        self._add_column(op.table, op.column)

    def _add_column(self, table: str, column: ColumnDef) -> None:
        self.ops.add_column(
            table,
            self._column(table, column),
            schema=self.schema,
            inline_references=self.sqlite,
        )

    def _RenameColumn(self, op: RenameColumn) -> None:
        self.ops.alter_column(op.table, op.old, new_column_name=op.new, schema=self.schema)
        if not self.sqlite:
            self._rename_foreign_keys(op.table, op.new)

    def _rename_foreign_keys(self, table: str, column: str) -> None:
        """Rename a lookup's foreign key with its column (PostgreSQL; SQLite's are unnamed)."""
        quote = self.conn.dialect.identifier_preparer.quote
        for fk in inspect(self.conn).get_foreign_keys(table, schema=self.schema):
            if fk["constrained_columns"] != [column]:
                continue
            storage = Storage("integer", references=fk["referred_table"])
            name = fk_name(ColumnDef(column, storage))
            if fk["name"] != name:
                self.ops.execute(
                    f"ALTER TABLE {quote(self.schema)}.{quote(table)} "
                    f"RENAME CONSTRAINT {quote(str(fk['name']))} TO {quote(name)}"
                )

    def _DropColumn(self, op: DropColumn) -> None:
        self.ops.drop_column(op.table, op.column.name, schema=self.schema)

    def _CreateIndex(self, op: CreateIndex) -> None:
        index = op.index
        if index.method == "trigram":
            self._create_trigram_index(op.table, index)
            return
        if index.unique and not self._no_duplicates(op):
            return
        live: dict[str, Any] = (
            {"sqlite_where": LIVE, "postgresql_where": LIVE} if index.live_only else {}
        )
        self.ops.create_index(
            index.name,
            op.table,
            list(index.columns),
            unique=index.unique,
            schema=self.schema,
            **live,
        )

    def _DropIndex(self, op: DropIndex) -> None:
        if op.index.method == "trigram":
            if not self.sqlite:  # it may never have been built (see _create_trigram_index)
                self.ops.drop_index(
                    op.index.name, table_name=op.table, schema=self.schema, if_exists=True
                )
            return
        self.ops.drop_index(op.index.name, table_name=op.table, schema=self.schema)

    def _create_trigram_index(self, table: str, index: PhysicalIndex) -> None:
        """A GIN pg_trgm index, so that ``ILIKE '%…%'`` search can use an index (PostgreSQL).

        SQLite has no such index: search scans the table there. On PostgreSQL the
        extension is created if it is missing; where that is not possible (not
        installed on the server, or no privilege) the index is left out with a
        warning: search stays correct, only slower. The plan believes the index
        exists from then on: to build it after installing the extension, publish
        the field without ``searchable`` and then with it again.
        """
        if self.sqlite:
            return
        opclass = self._trigram_opclass()
        if opclass is None:
            log.warning(
                "no trigram index %s on %s.%s: PostgreSQL extension %s is not available; "
                "search over this field scans the table",
                index.name,
                self.schema,
                table,
                TRIGRAM_EXTENSION,
            )
            return
        self.ops.create_index(
            index.name,
            table,
            list(index.columns),
            schema=self.schema,
            postgresql_using="gin",
            postgresql_ops=dict.fromkeys(index.columns, opclass),
        )

    def _trigram_opclass(self) -> str | None:
        """The schema-qualified ``gin_trgm_ops``, creating the extension if needed and allowed."""
        schema = self._extension_schema()
        if schema is None:
            quote = self.conn.dialect.identifier_preparer.quote
            try:
                with self.conn.begin_nested():
                    self.conn.execute(
                        text(f"CREATE EXTENSION IF NOT EXISTS {quote(TRIGRAM_EXTENSION)}")
                    )
            except DBAPIError as exc:
                log.warning("cannot create extension %s: %s", TRIGRAM_EXTENSION, exc.orig)
            # Another transaction may have created it meanwhile: look again.
            schema = self._extension_schema()
        if schema is None:
            return None
        return f"{self.conn.dialect.identifier_preparer.quote(schema)}.gin_trgm_ops"

    def _extension_schema(self) -> str | None:
        found = self.conn.execute(
            text(
                "SELECT n.nspname FROM pg_extension e "
                "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = :name"
            ),
            {"name": TRIGRAM_EXTENSION},
        ).scalar()
        return None if found is None else str(found)

    def _ConvertColumn(self, op: ConvertColumn) -> None:
        conversion = op.conversion
        table = self._reflect(op.table, op.column, conversion)
        if conversion.overflow is not None and not self._all_fit(op, table, conversion.overflow):
            self._refused.add((op.table, op.column))
            return
        if conversion.loss is not None and not self._loss_accepted(op, table, conversion.loss):
            self._refused.add((op.table, op.column))
            return
        target = sql_type(conversion.target)
        expression = _converted(
            sa_column(op.column, sql_type(conversion.source)), conversion, sqlite=self.sqlite
        )
        if self.sqlite and _decimal(conversion):
            self._convert_in_python(op)
            return
        if not self.sqlite:
            using = expression.compile(
                dialect=self.conn.dialect, compile_kwargs={"literal_binds": True}
            )
            self.ops.alter_column(
                op.table,
                op.column,
                type_=target,
                schema=self.schema,
                postgresql_using=str(using),
            )
            return
        # SQLite: copy into a new column, then swap names (no table rebuild).
        scratch = f"fl_new_{op.column}"[:63]
        self.ops.add_column(op.table, Column(scratch, target, nullable=True), schema=self.schema)
        self.conn.execute(table.update().values({scratch: expression}))
        self.ops.drop_column(op.table, op.column, schema=self.schema)
        self.ops.alter_column(op.table, scratch, new_column_name=op.column, schema=self.schema)

    def _RecheckValues(self, op: RecheckValues) -> None:
        """Stored values must be valid for the field's new type/options; force clears the rest."""
        if (op.table, op.field.name) in self._refused:
            return  # its conversion was refused and already reported
        field_type = field_types.get(op.field.type)
        options = field_type.parse_options(op.field.options)
        storage = field_type.storage(op.field.options)
        table = Table(
            op.table,
            MetaData(),
            Column("id", BigInteger, primary_key=True),
            Column(op.field.name, sql_type(storage)),
            schema=self.schema,
        )
        column = table.c[op.field.name]
        invalid: list[int] = []
        examples: list[str] = []
        query = select(table.c.id, column).where(column.is_not(None)).order_by(table.c.id)
        for record_id, value in self.conn.execute(query):
            try:
                field_type.normalise(field_type.to_json(value, options), options)
            except FieldValueError as exc:
                invalid.append(record_id)
                if len(examples) < 3:
                    examples.append(f"record {record_id}: {exc.en}")
        if not invalid:
            return
        if self.force:
            for start in range(0, len(invalid), 500):
                chunk = invalid[start : start + 500]
                self.conn.execute(
                    table.update().where(table.c.id.in_(chunk)).values({op.field.name: None})
                )
            return
        self.issues.append(
            Issue(
                op.field_path,
                "invalid_stored_values",
                f"{len(invalid)} stored value(s) of `{op.table}.{op.field.name}` are not valid "
                f"for its new definition ({'; '.join(examples)}); correct those records first, "
                "or publish with force to clear them",
            )
        )

    def _reflect(self, table_name: str, column_name: str, conversion: Conversion) -> Table:
        return Table(
            table_name,
            MetaData(),
            Column(column_name, sql_type(conversion.source)),
            Column(f"fl_new_{column_name}"[:63], sql_type(conversion.target)),
            schema=self.schema,
        )

    def _affected(self, op: ConvertColumn, table: Table, check: LossCheck) -> int:
        """How many stored values match ``check``."""
        if self.sqlite and _decimal(op.conversion):
            return self._affected_in_python(op, check)
        column = table.c[op.column]
        scale = op.conversion.target.scale or 0
        condition = _loss_condition(column, check, sqlite=self.sqlite, target_scale=scale)
        count: int = self.conn.execute(
            select(func.count()).select_from(table).where(and_(column.is_not(None), condition))
        ).scalar_one()
        return count

    def _all_fit(self, op: ConvertColumn, table: Table, overflow: LossCheck) -> bool:
        affected = self._affected(op, table, overflow)
        if affected == 0:
            return True
        self.issues.append(
            Issue(
                op.field_path,
                "values_do_not_fit",
                f"cannot change `{op.table}.{op.column}` to {op.conversion.target.describe()}: "
                f"{affected} row(s) hold {overflow.describe().removeprefix('values ')}; "
                "choose a larger precision or correct those rows first",
            )
        )
        return False

    def _loss_accepted(self, op: ConvertColumn, table: Table, loss: LossCheck) -> bool:
        affected = self._affected(op, table, loss)
        if affected == 0 or self.force:
            return True
        self.issues.append(
            Issue(
                op.field_path,
                "lossy_type_change",
                f"changing `{op.table}.{op.column}` to {op.conversion.target.describe()} would "
                f"change {affected} row(s): {loss.describe()}; fix those rows first or publish "
                "with force to accept the loss",
            )
        )
        return False

    # -- decimals on SQLite ----------------------------------------------------------------------

    def _convert_in_python(self, op: ConvertColumn) -> None:
        """SQLite, from or to a decimal: copy each value through Python into a new column."""
        conversion = op.conversion
        self._swap_column(
            op.table,
            op.column,
            sql_type(conversion.source),
            sql_type(conversion.target),
            lambda value: _python_converted(value, conversion),
        )

    def _affected_in_python(self, op: ConvertColumn, check: LossCheck) -> int:
        scale = op.conversion.target.scale or 0
        table = self._values_table(op.table, op.column, sql_type(op.conversion.source))
        return sum(
            1
            for _id, value in self.conn.execute(self._stored_values(table, op.column))
            if _python_loss(value, check, target_scale=scale)
        )

    def upgrade_decimal_columns(self, documents: Iterable[EntityDoc]) -> list[str]:
        """SQLite: make the decimal columns of ``documents``' tables that are still declared
        ``NUMERIC(p,s)`` scaled ones; ``table.column`` of each one converted (idempotent)."""
        if not self.sqlite:
            return []
        converted = []
        for document in documents:
            legacy = _legacy_decimal_columns(self.conn, self.schema, document)
            if not legacy:
                continue
            names = {c.name for c in legacy}
            indexes = [ix for ix in physical_indexes(document).values() if names & set(ix.columns)]
            for index in indexes:
                self.ops.drop_index(
                    index.name, table_name=document.name, schema=self.schema, if_exists=True
                )
            for column in legacy:
                storage = column.storage
                plain = Numeric(storage.precision, storage.scale, asdecimal=True)
                self._swap_column(
                    document.name, column.name, plain, sql_type(storage), lambda value: value
                )
                converted.append(f"{document.name}.{column.name}")
            for index in indexes:
                self._CreateIndex(CreateIndex(document.name, index, ""))
        return converted

    def _swap_column(
        self,
        table_name: str,
        column: str,
        source: Any,
        target: Any,
        convert: Callable[[Any], Any],
    ) -> None:
        """Move ``column``'s values into a new column of type ``target`` through ``convert``,
        then put the new column in its place (SQLite: no table rebuild)."""
        scratch = f"fl_new_{column}"[:63]
        self.ops.add_column(table_name, Column(scratch, target, nullable=True), schema=self.schema)
        table = self._values_table(table_name, column, source)
        new = Table(
            table_name,
            MetaData(),
            Column("id", BigInteger, primary_key=True),
            Column(scratch, target),
            schema=self.schema,
        )
        update = (
            new.update()
            .where(new.c.id == bindparam("row_id"))
            .values({scratch: bindparam("new_value", type_=target)})
        )
        rows = [
            {"row_id": row_id, "new_value": convert(value)}
            for row_id, value in self.conn.execute(self._stored_values(table, column))
        ]
        for start in range(0, len(rows), 500):
            self.conn.execute(update, rows[start : start + 500])
        self.ops.drop_column(table_name, column, schema=self.schema)
        self.ops.alter_column(table_name, scratch, new_column_name=column, schema=self.schema)

    def _values_table(self, table_name: str, column: str, column_type: Any) -> Table:
        return Table(
            table_name,
            MetaData(),
            Column("id", BigInteger, primary_key=True),
            Column(column, column_type),
            schema=self.schema,
        )

    @staticmethod
    def _stored_values(table: Table, column: str) -> Any:
        return select(table.c.id, table.c[column]).where(table.c[column].is_not(None))

    def _no_duplicates(self, op: CreateIndex) -> bool:
        table = Table(
            op.table, MetaData(), *(Column(c) for c in op.index.columns), schema=self.schema
        )
        columns = [table.c[c] for c in op.index.columns]
        query = (
            select(*columns, func.count().label("n"))
            .where(and_(*(c.is_not(None) for c in columns)))
            .group_by(*columns)
            .having(func.count() > 1)
            .order_by(func.count().desc())
            .limit(MAX_LISTED)
        )
        duplicates = self.conn.execute(query).all()
        if not duplicates:
            return True
        listed = ", ".join(
            f"{' / '.join(repr(v) for v in row[:-1])} ({row[-1]} rows)" for row in duplicates
        )
        self.issues.append(
            Issue(
                op.field_path,
                "duplicate_values",
                f"cannot make {', '.join(op.index.columns)} of `{op.table}` unique: these values "
                f"appear more than once: {listed}; merge or correct those records first",
            )
        )
        return False


def _loss_condition(
    column: ColumnElement[object], loss: LossCheck, *, sqlite: bool, target_scale: int = 0
) -> ColumnElement[bool]:
    if loss.kind == "longer_than":
        length = func.length if sqlite else func.char_length
        return length(cast(column, Text())) > loss.limit
    if loss.kind == "fraction_beyond":
        return column != func.round(column, loss.limit)
    if loss.kind == "digits_beyond":
        rounded: ColumnElement[Any] = func.abs(func.round(column, target_scale))
        too_large: ColumnElement[bool] = rounded >= 10**loss.limit
        return too_large
    return func.json_array_length(column) > 1


def _converted(
    column: ColumnElement[object], conversion: Conversion, *, sqlite: bool
) -> ColumnElement[object]:
    """The SQL expression computing the new value from the old one."""
    transform = conversion.transform
    target = sql_type(conversion.target)
    if transform == "truncate":
        return cast(func.substr(cast(column, Text()), 1, conversion.target.length), target)
    if transform == "round":
        return cast(func.round(column, conversion.target.scale or 0), target)
    if transform == "wrap_json_array":
        wrapped = func.json_array(column) if sqlite else func.json_build_array(column)
        return case((column.is_(None), None), else_=wrapped)
    if transform == "first_json_element":
        if sqlite:
            return func.json_extract(column, "$[0]")
        return column.op("->>")(0)
    if sqlite and conversion.source.kind == "date" and conversion.target.kind == "datetime":
        return column.op("||")(" 00:00:00.000000")
    return cast(column, target)


def _legacy_decimal_columns(conn: Connection, schema: str, document: EntityDoc) -> list[ColumnDef]:
    """SQLite: the decimal columns of ``document``'s table still declared ``NUMERIC(p,s)``."""
    fields = [*document.fields, *(r.field for r in document.retired_fields)]
    columns = [
        column_of(f) for f in fields if has_column(f) and column_of(f).storage.kind == "decimal"
    ]
    if not columns:
        return []
    rows = conn.exec_driver_sql(f'PRAGMA "{schema}".table_info("{document.name}")')
    declared = {str(row[1]): str(row[2]).upper() for row in rows}
    return [
        c for c in columns if not declared.get(c.name, SCALED_DECIMAL).startswith(SCALED_DECIMAL)
    ]


def _decimal(conversion: Conversion) -> bool:
    return "decimal" in (conversion.source.kind, conversion.target.kind)


def _python_converted(value: Any, conversion: Conversion) -> Any:
    """A stored number as ``conversion``'s target holds it (what PostgreSQL's USING computes)."""
    target = conversion.target
    if target.kind == "decimal":
        return _rounded(Decimal(value), target.scale or 0)
    if target.kind == "integer":
        return int(_rounded(Decimal(value), 0))
    shown = str(value)
    return shown[: target.length] if conversion.transform == "truncate" else shown


def _python_loss(value: Any, check: LossCheck, *, target_scale: int) -> bool:
    """Whether a stored number matches ``check`` (what :func:`_loss_condition` counts)."""
    if check.kind == "longer_than":
        return len(str(value)) > check.limit
    number = Decimal(value)
    if check.kind == "fraction_beyond":
        return number != _rounded(number, check.limit)
    if check.kind == "digits_beyond":
        return abs(_rounded(number, target_scale)) >= Decimal(1).scaleb(check.limit)
    return False


def _rounded(number: Decimal, scale: int) -> Decimal:
    return number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)


def upgrade_decimal_columns(workspace: Workspace, env: str) -> list[str]:
    """SQLite: convert the decimal columns of ``env`` created before scaled decimals.

    Databases created before :class:`~formloom.platform.column_types.ExactDecimal`
    declare decimal columns ``NUMERIC(p,s)`` and hold plain numbers (doubles beyond
    15 significant digits, already rounded when they were written); read as scaled
    integers they would be wrong by ``10**scale``. This rewrites each such column of
    every published entity (retired fields and removed entities included) as
    ``DECIMAL_SCALED(p,s)`` holding the same values as they read before, in one
    transaction; its indexes are rebuilt. Run it when an environment is opened after an
    upgrade (``environments.upgrade_environment``); it does nothing on PostgreSQL or
    when every column is converted (one ``PRAGMA table_info`` per entity with decimals).
    Returns ``table.column`` of each converted column.
    """
    if not workspace.is_sqlite:
        return []
    with workspace.begin(env) as conn:
        bodies = conn.execute(
            select(meta_version.c.body)
            .join(
                meta_document,
                (meta_document.c.kind == meta_version.c.kind)
                & (meta_document.c.name == meta_version.c.name)
                & (meta_document.c.published_version == meta_version.c.version),
            )
            .where(meta_version.c.kind == "entity")
            .order_by(meta_version.c.name)
        ).scalars()
        documents = [EntityDoc.model_validate(body) for body in bodies]
        schema = workspace.env_schema(env)
        if not any(_legacy_decimal_columns(conn, schema, d) for d in documents):
            return []  # the usual case: no Alembic import, nothing written
        converted = SchemaSync(conn, workspace, env).upgrade_decimal_columns(documents)
    if converted:
        log.info("environment `%s`: decimal columns made exact: %s", env, ", ".join(converted))
    return converted

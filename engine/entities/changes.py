"""Turn the change from one entity document to the next into table operations.

:func:`plan_entity_change` is pure: it compares the published document with the
new one and returns the operations the platform must apply (create/alter/drop
table, columns, indexes) plus the document to publish (with stable field ids
assigned and removed fields retired). Checks that need the data (duplicates
before a unique index, values a lossy conversion would change) are named in the
plan and carried out by the platform before anything changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from formloom.engine.entities.model import EntityDoc, FieldDef, RetiredField
from formloom.engine.errors import DocumentInvalid, Issue, pointer
from formloom.engine.fields import Storage, field_types
from formloom.engine.fields.computed import ComputedFieldType
from formloom.engine.fields.conversion import Conversion, plan_conversion

MAX_IDENTIFIER = 63


@dataclass(frozen=True)
class ColumnDef:
    """A user column of an entity table."""

    name: str
    storage: Storage


#: ``btree``: an ordinary index. ``trigram``: a text index for substring search
#: (``ILIKE '%…%'``), which the platform builds where the database can (PostgreSQL pg_trgm).
IndexMethod = Literal["btree", "trigram"]


@dataclass(frozen=True)
class PhysicalIndex:
    """An index as it exists in the database.

    ``live_only``: the index holds the records that are not deleted only
    (``WHERE deleted_at IS NULL``), the ones lists show and count, so that a
    filtered or sorted list and its total are read from the index alone instead
    of visiting every row to leave the deleted ones out. Indexes that also serve
    reads of deleted records hold every record: unique ones (uniqueness counts
    the recycle bin), lookups' (on-delete rules, restores and purges follow them)
    and the title field's (imports match titles in the recycle bin too).
    """

    name: str
    columns: tuple[str, ...]
    unique: bool
    method: IndexMethod = "btree"
    live_only: bool = False


@dataclass(frozen=True)
class CreateTable:
    table: str
    columns: tuple[ColumnDef, ...]


@dataclass(frozen=True)
class DropTable:
    table: str


@dataclass(frozen=True)
class AddColumn:
    table: str
    column: ColumnDef


@dataclass(frozen=True)
class RenameColumn:
    table: str
    old: str
    new: str


@dataclass(frozen=True)
class ConvertColumn:
    """Change a column's storage; ``conversion.loss`` names values that would change."""

    table: str
    column: str
    conversion: Conversion
    field_path: str


@dataclass(frozen=True)
class DropColumn:
    table: str
    column: ColumnDef


@dataclass(frozen=True)
class CreateIndex:
    table: str
    index: PhysicalIndex
    field_path: str


@dataclass(frozen=True)
class DropIndex:
    table: str
    index: PhysicalIndex


@dataclass(frozen=True)
class CreateJunction:
    """Create the junction table of a multi-lookup (kept if it exists from an earlier field)."""

    table: str
    field: str
    target: str


@dataclass(frozen=True)
class DropJunction:
    table: str
    field: str


@dataclass(frozen=True)
class RecheckValues:
    """Check stored values against a field's new type or options (invalid ones block it)."""

    table: str
    field: FieldDef
    field_path: str


Operation = (
    CreateTable
    | DropTable
    | AddColumn
    | RenameColumn
    | ConvertColumn
    | DropColumn
    | CreateIndex
    | DropIndex
    | RecheckValues
    | CreateJunction
    | DropJunction
)


@dataclass
class EntityPlan:
    """Operations in the order they must run, and the document to publish."""

    operations: list[Operation] = field(default_factory=list)
    document: EntityDoc | None = None

    @property
    def changes_tables(self) -> bool:
        return bool(self.operations)


def column_of(field_def: FieldDef) -> ColumnDef:
    storage = field_types.get(field_def.type).storage(field_def.options)
    return ColumnDef(field_def.name, storage)


def has_column(field_def: FieldDef) -> bool:
    """Whether the field has a column in the entity's table (``virtual`` types have none)."""
    return not field_types.get(field_def.type).virtual


def junction_table_name(entity: str, field_name: str) -> str:
    """The junction table of a multi-lookup: ``<entity>__<field>``, shortened like indexes."""
    return identifier(f"{entity}__{field_name}")


def _junction(table: str, f: FieldDef) -> CreateJunction | None:
    target = field_types.get(f.type).junction_target(f.options)
    return None if target is None else CreateJunction(table, f.name, target)


def _computed(field_def: FieldDef) -> bool:
    """Whether the platform computes the field's values (formula, auto-number, rollup)."""
    return isinstance(field_types.get(field_def.type), ComputedFieldType)


def _storage_changed(old: FieldDef, new: FieldDef) -> bool:
    return column_of(old).storage != column_of(new).storage


def physical_indexes(document: EntityDoc) -> dict[str, PhysicalIndex]:
    """Every index the entity's table must have, by name."""
    table = document.name
    wanted: list[PhysicalIndex] = []
    for f in document.fields:
        if f.unique:
            wanted.append(PhysicalIndex(_index_name("uq", table, f.name), (f.name,), True))
        elif field_types.get(f.type).references(f.options):
            wanted.append(PhysicalIndex(_index_name("ix", table, f.name), (f.name,), False))
        elif f.indexed:
            live_only = f.name != document.title_field
            name = _index_name("ix", table, f.name)
            wanted.append(PhysicalIndex(name, (f.name,), False, live_only=live_only))
    for f in document.fields:
        if f.searchable and column_of(f).storage.kind in ("string", "text"):
            name = _index_name("tg", table, f.name)
            wanted.append(PhysicalIndex(name, (f.name,), False, "trigram"))
    for ix in document.indexes:
        prefix = "uq" if ix.unique else "ix"
        name = _index_name(prefix, table, ix.name)
        wanted.append(PhysicalIndex(name, tuple(ix.fields), ix.unique, live_only=not ix.unique))
    return {ix.name: ix for ix in wanted}


def _index_name(prefix: str, table: str, name: str) -> str:
    return identifier(f"{prefix}_{table}__{name}")


def identifier(full: str) -> str:
    """A database identifier of at most 63 characters; longer names end in a hash of the whole."""
    if len(full) <= MAX_IDENTIFIER:
        return full
    digest = hashlib.sha1(full.encode()).hexdigest()[:10]
    return f"{full[: MAX_IDENTIFIER - 11]}_{digest}"


def field_id(entity: str, name: str, version: int) -> str:
    """A stable, deterministic id for a field first published in ``version``."""
    return "fld_" + hashlib.sha1(f"{entity}:{name}:{version}".encode()).hexdigest()[:12]


def plan_entity_change(
    old: EntityDoc | None, new: EntityDoc, *, version: int, purge: bool = False
) -> EntityPlan:
    """Plan publishing ``new`` (as ``version``) over ``old`` (None: the table does not exist)."""
    if old is None:
        return _plan_create(new, version)
    return _FieldMatcher(old, new, version=version, purge=purge).plan()


def plan_entity_removal(old: EntityDoc, *, purge: bool) -> EntityPlan:
    """Remove an entity: soft (table kept) unless ``purge`` (junction tables go first)."""
    if not purge:
        return EntityPlan(operations=[], document=old)
    junctions: list[Operation] = [
        DropJunction(old.name, f.name) for f in old.fields if _junction(old.name, f)
    ]
    return EntityPlan(operations=[*junctions, DropTable(old.name)], document=old)


def _plan_create(new: EntityDoc, version: int) -> EntityPlan:
    fields = [_with_id(f, f.id or field_id(new.name, f.name, version)) for f in new.fields]
    document = new.model_copy(update={"fields": fields, "retired_fields": []})
    columns = tuple(column_of(f) for f in fields if has_column(f))
    operations: list[Operation] = [CreateTable(new.name, columns)]
    for index in physical_indexes(document).values():
        operations.append(CreateIndex(new.name, index, _index_path(document, index)))
    operations += [j for f in fields if (j := _junction(new.name, f))]
    return EntityPlan(operations=operations, document=document)


def _with_id(f: FieldDef, id_: str) -> FieldDef:
    return f.model_copy(update={"id": id_, "renamed_from": None})


def _index_path(document: EntityDoc, index: PhysicalIndex) -> str:
    for i, f in enumerate(document.fields):
        if index.method == "trigram" and index.columns == (f.name,):
            return pointer("fields", i, "searchable")
        if index.columns == (f.name,) and (f.unique or f.indexed):
            return pointer("fields", i, "unique" if index.unique else "indexed")
    for i, ix in enumerate(document.indexes):
        if tuple(ix.fields) == index.columns:
            return pointer("indexes", i)
    return ""


class _FieldMatcher:
    """Matches the fields of two versions of an entity and derives the operations."""

    def __init__(self, old: EntityDoc, new: EntityDoc, *, version: int, purge: bool) -> None:
        self.old, self.new, self.version, self.purge = old, new, version, purge
        self.table = old.name
        self.issues: list[Issue] = []
        self.renames: list[RenameColumn] = []
        self.adds: list[AddColumn] = []
        self.converts: list[ConvertColumn] = []
        self.rechecks: list[RecheckValues] = []
        self.drops: list[DropColumn] = []
        self.junctions: list[CreateJunction | DropJunction] = []
        self.fields: list[FieldDef] = []
        self.matched_old: set[str] = set()
        self.restored: set[str] = set()
        self.previous: dict[int, FieldDef] = {}
        self.claimed_twice: set[int] = set()

    def plan(self) -> EntityPlan:
        self.previous = self._previous_fields()
        for i, f in enumerate(self.new.fields):
            if i in self.claimed_twice:
                continue
            at = pointer("fields", i)
            previous = self.previous.get(i)
            if f.renamed_from and previous is None:
                self.issues.append(
                    Issue(
                        at + "/renamed_from",
                        "unknown_field",
                        f"field `{f.name}` is renamed from `{f.renamed_from}`, but the published "
                        "entity has no such field",
                    )
                )
                continue
            if previous is None:
                self._add_or_restore(f, at)
            else:
                self._match(previous, f, at)
        retired = self._retire_unmatched()
        if self.issues:
            raise DocumentInvalid(self.issues)
        document = self.new.model_copy(update={"fields": self.fields, "retired_fields": retired})
        return EntityPlan(operations=self._ordered(document), document=document)

    def _previous_fields(self) -> dict[int, FieldDef]:
        """The published field each new field continues (by position in the new document).

        A field continues the published one with its ``id``, else the one named by its
        ``renamed_from``, else the one with its name. A published field claimed by id or
        ``renamed_from`` is not matched by name as well, so a new field may take the old
        name of a renamed one; a published field can be claimed only once.
        """
        by_id = {f.id: f for f in self.old.fields if f.id}
        by_name = {f.name: f for f in self.old.fields}
        previous: dict[int, FieldDef] = {}
        claimed_by: dict[str, str] = {}
        for i, f in enumerate(self.new.fields):
            via_id = by_id.get(f.id) if f.id else None
            found = via_id or (by_name.get(f.renamed_from) if f.renamed_from else None)
            if found is None:
                continue
            if found.name in claimed_by:
                self.issues.append(
                    Issue(
                        pointer("fields", i, "id" if via_id else "renamed_from"),
                        "renamed_twice",
                        f"field `{f.name}` continues published field `{found.name}`, which "
                        f"field `{claimed_by[found.name]}` already continues; keep one of them",
                    )
                )
                self.claimed_twice.add(i)
                continue
            claimed_by[found.name] = f.name
            previous[i] = found
        for i, f in enumerate(self.new.fields):
            if i not in previous and f.name in by_name and f.name not in claimed_by:
                previous[i] = by_name[f.name]
        return previous

    def _add_or_restore(self, f: FieldDef, at: str) -> None:
        if not has_column(f):
            if junction := _junction(self.table, f):
                self.junctions.append(junction)
            self.fields.append(_with_id(f, f.id or field_id(self.table, f.name, self.version)))
            return
        column = column_of(f)
        retired = self.old.retired(f.name)
        if retired is not None and not self.purge:
            if column_of(retired.field).storage != column.storage:
                self.issues.append(
                    Issue(
                        at + "/type",
                        "retired_column",
                        f"field `{f.name}` was removed earlier and its column still holds data "
                        f"stored as {column_of(retired.field).storage.describe()}; add it back "
                        f"with that type, or publish with purge to drop the old column first",
                    )
                )
                return
            self.restored.add(f.name)
            self.fields.append(_with_id(f, retired.field.id or field_id(self.table, f.name, 0)))
            return
        self.adds.append(AddColumn(self.table, column))
        self.fields.append(_with_id(f, f.id or field_id(self.table, f.name, self.version)))

    def _match(self, previous: FieldDef, f: FieldDef, at: str) -> None:
        self.matched_old.add(previous.name)
        if previous.name != f.name:
            retired = self.old.retired(f.name) is not None and not self.purge
            occupied = self.old.field(f.name) is not None and f.name not in self._renamed_away()
            if retired or occupied:
                self.issues.append(
                    Issue(
                        at + "/name",
                        "name_taken",
                        f"cannot rename `{previous.name}` to `{f.name}`: a column named "
                        f"`{f.name}` already exists; rename in two steps or purge the old field",
                    )
                )
                return
        if not has_column(previous) or not has_column(f):
            self._match_virtual(previous, f, at)
            return
        if _computed(previous) and _computed(f) and _storage_changed(previous, f):
            # Computed values are recomputed from each record by a background job
            # (formloom.platform.formula_jobs): a new column, not a conversion of old values.
            self.drops.append(DropColumn(self.table, column_of(previous)))
            self.adds.append(AddColumn(self.table, column_of(f)))
            self.fields.append(_with_id(f, previous.id or field_id(self.table, f.name, 0)))
            return
        if previous.name != f.name:
            self.renames.append(RenameColumn(self.table, previous.name, f.name))
        conversion = plan_conversion(column_of(previous).storage, column_of(f).storage)
        if not conversion.possible:
            self.issues.append(
                Issue(
                    at + "/type",
                    "unsupported_type_change",
                    f"field `{f.name}`: changing type `{previous.type}` to `{f.type}` is not "
                    f"supported: {conversion.reason}",
                )
            )
            return
        if conversion.changes_column:
            self.converts.append(ConvertColumn(self.table, f.name, conversion, at + "/type"))
        if (previous.type != f.type or previous.options != f.options) and not _computed(f):
            path = at + ("/type" if previous.type != f.type else "/options")
            self.rechecks.append(RecheckValues(self.table, f, path))
        self.fields.append(_with_id(f, previous.id or field_id(self.table, f.name, 0)))

    def _match_virtual(self, previous: FieldDef, f: FieldDef, at: str) -> None:
        """A field without a column changes its options freely, but keeps its type; a
        multi-lookup also keeps its name and target (they name its junction table)."""
        moved = _junction(self.table, previous) != _junction(self.table, f)
        if previous.type != f.type or moved:
            self.issues.append(
                Issue(
                    at + "/type",
                    "unsupported_type_change",
                    f"field `{f.name}`: changing type `{previous.type}` to `{f.type}` is not "
                    "supported for fields without a column (child tables, multi-lookups), nor "
                    "renaming or retargeting a multi-lookup; remove the field and add a new one "
                    "under another name",
                )
            )
            return
        self.fields.append(_with_id(f, previous.id or field_id(self.table, f.name, 0)))

    def _renamed_away(self) -> set[str]:
        """Published names that a rename frees in this change."""
        return {p.name for i, p in self.previous.items() if self.new.fields[i].name != p.name}

    def _retire_unmatched(self) -> list[RetiredField]:
        retired: list[RetiredField] = []
        for r in self.old.retired_fields:
            if r.field.name in self.restored or not has_column(r.field):
                continue
            if self.purge:
                self.drops.append(DropColumn(self.table, column_of(r.field)))
            else:
                retired.append(r)
        for f in self.old.fields:
            if f.name in self.matched_old:
                continue
            if not has_column(f):
                if self.purge and _junction(self.table, f):
                    self.junctions.append(DropJunction(self.table, f.name))
                continue
            if self.purge:
                self.drops.append(DropColumn(self.table, column_of(f)))
            else:
                retired.append(RetiredField(field=f, removed_in_version=self.version))
        return retired

    def _ordered(self, document: EntityDoc) -> list[Operation]:
        before = physical_indexes(self.old)
        after = physical_indexes(document)
        touched = {c.column for c in self.converts} | {d.column.name for d in self.drops}
        drop_ix = [
            ix
            for name, ix in before.items()
            if after.get(name) != ix
            or touched & set(ix.columns)
            or any(r.old in ix.columns for r in self.renames)
        ]
        dropped = {ix.name for ix in drop_ix}
        create_ix = [ix for name, ix in after.items() if name in dropped or name not in before]
        return [
            *(DropIndex(self.table, ix) for ix in drop_ix),
            *self.drops,
            *_rename_order(self.renames),
            *self.adds,
            *self.converts,
            *self.rechecks,
            *(CreateIndex(self.table, ix, _index_path(document, ix)) for ix in create_ix),
            *self.junctions,
        ]


def _rename_order(renames: Iterable[RenameColumn]) -> list[RenameColumn]:
    """Order renames so that a name is freed before another column takes it (no cycles allowed)."""
    pending = list(renames)
    ordered: list[RenameColumn] = []
    while pending:
        targets_in_use = {r.old for r in pending}
        ready = [r for r in pending if r.new not in targets_in_use]
        if not ready:
            names = ", ".join(f"`{r.old}`→`{r.new}`" for r in pending)
            raise DocumentInvalid(
                [
                    Issue(
                        "/fields",
                        "rename_cycle",
                        f"renames {names} swap names; rename through a temporary name in two "
                        "publishes",
                    )
                ]
            )
        ordered.extend(ready)
        pending = [r for r in pending if r not in ready]
    return ordered

"""Checking and writing one batch of import rows in one transaction.

A batch (a few hundred rows) goes through the records service's save pipeline
with the database work done per batch instead of per row:

1. the upsert key of each row is read and the records it names are fetched
   (one query), a key repeated in the file is refused;
2. each cell becomes a JSON value (:mod:`formloom.platform.cell_formats`);
   lookups are resolved by the target's title or a chosen unique field (one
   query per lookup column): a missing, deleted or ambiguous record is a cell error;
3. each row goes through the steps of :class:`RecordWriter` ``create``/``update``:
   :func:`~formloom.engine.records.payload.check_payload` (types, lengths,
   choices, required, defaults for new records),
   :func:`~formloom.platform.record_files.check_file_values` (file references) and
   :func:`~formloom.platform.save_pipeline.run_rules` (formulas, conditional
   required fields, validation rules, duplicate rules; a ``warn`` duplicate is a
   row error unless the import confirms duplicates);
4. unique fields, unique indexes and duplicate rules are also checked against
   the file's earlier rows; unique values against the database with one query
   per constraint (only rows that clash go through
   :func:`~formloom.platform.record_checks.unique_issues` for its message);
5. with ``write``, good rows are written: auto-numbers taken, new records in
   one statement (:func:`insert_rows`), updates through :meth:`RecordWriter.write_update`
   (conditional on the version read in step 1), every change audited with one
   multi-row INSERT, rollups recomputed once for the batch.

The writer has no batch entry point yet; this module calls the pipeline's
public steps in the writer's order. When :class:`RecordWriter` grows one
(``create_many``/``update_many``), the steps above should move there.

Every problem becomes a :class:`RowError` at the row's number in the file and
its column's header; a row with any error is not written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, RowMapping, Table, func, select, tuple_

from formloom.engine.entities.model import DuplicateRule
from formloom.engine.errors import Issue
from formloom.engine.fields import FieldValueError
from formloom.engine.records.compiled import CompiledField
from formloom.engine.records.payload import check_payload
from formloom.engine.records.rules import duplicate_key
from formloom.platform.audit import AuditEvent
from formloom.platform.cell_formats import Cell, CellContext, format_of, is_empty, plain_text
from formloom.platform.entity_runtime import RuntimeEntity
from formloom.platform.errors import PlatformError
from formloom.platform.import_columns import (
    ID,
    ColumnPlan,
    is_computed,
    is_virtual,
    lookup_target,
)
from formloom.platform.import_files import SheetRow
from formloom.platform.record_checks import unique_issues
from formloom.platform.record_duplicates import warning
from formloom.platform.record_errors import say
from formloom.platform.record_files import check_file_values
from formloom.platform.record_references import chunks
from formloom.platform.record_writer import RecordWriter
from formloom.platform.row_copy import insert_rows, qualified_name
from formloom.platform.save_pipeline import assign_auto_numbers, rules_for, run_rules

#: A unique constraint: the fields whose values together may not repeat (also the key of
#: the file's values of a duplicate rule, marked by a leading NUL).
Constraint = tuple[str, ...]


@dataclass(frozen=True)
class RowError:
    """One problem of the file: row number (header = 1), column header, field, code, message."""

    row: int | None
    column: str | None
    field: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "field": self.field,
            "code": self.code,
            "message": self.message,
        }


@dataclass
class ImportState:
    """What an import remembers from batch to batch: values seen in the file, resolved lookups.

    A batch stages its additions; :meth:`commit` keeps them once its transaction
    has committed, so a batch that is tried again does not meet its own rows.
    """

    seen: dict[Constraint, dict[tuple[Any, ...], int]] = field(default_factory=dict)
    lookups: dict[tuple[str, Any], int] = field(default_factory=dict)

    def commit(self, staged: ImportState) -> None:
        for constraint, values in staged.seen.items():
            self.seen.setdefault(constraint, {}).update(values)
        self.lookups.update(staged.lookups)


@dataclass
class BatchResult:
    """How many rows were (or, checking only, would be) created, updated or left as they are."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    bad_rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    staged: ImportState = field(default_factory=ImportState)


@dataclass
class _Row:
    number: int
    cells: tuple[Cell, ...]
    errors: list[RowError] = field(default_factory=list)
    key: Any = None
    existing: RowMapping | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, Any] = field(default_factory=dict)

    @property
    def bad_fields(self) -> set[str | None]:
        return {e.field for e in self.errors}


class ImportBatch:
    """Checks (and with ``write``, writes) rows of one entity on the writer's connection."""

    def __init__(
        self,
        writer: RecordWriter,
        entity: RuntimeEntity,
        plan: ColumnPlan,
        *,
        cells: CellContext,
        state: ImportState,
        confirm_duplicates: bool = False,
    ) -> None:
        self.writer = writer
        self.confirm_duplicates = confirm_duplicates
        self.rules = rules_for(writer, entity)
        self.entity = entity
        self.plan = plan
        self.cells = cells
        self.state = state
        self.lang = writer.lang
        self.staged = ImportState()
        self._constraints = _unique_constraints(entity)
        fields = entity.compiled.fields
        #: (cell index, field, compiled field, its cell format, is a lookup) per filled column.
        self._columns = [
            (
                c.index,
                c.field,
                fields[c.field],
                format_of(fields[c.field]),
                lookup_target(fields[c.field]) is not None,
            )
            for c in plan.mapped
            if c.field is not None and c.field != ID and not is_computed(fields[c.field])
        ]

    def run(self, sheet_rows: Sequence[SheetRow], *, write: bool) -> BatchResult:
        rows = [_Row(r.number, r.cells) for r in sheet_rows]
        if self.plan.upsert_on is not None:
            self._match_existing(rows, lock=write)
        for row in rows:
            self._read_cells(row)
        self._resolve_lookups(rows)
        for row in rows:
            self._check(row)
        self._check_unique(rows)
        result = BatchResult(staged=self.staged)
        good = [r for r in rows if not r.errors]
        creates = [r for r in good if r.existing is None]
        updates = [r for r in good if r.existing is not None and r.changed]
        if write:
            with self.writer.deferred_rollups():
                self._insert(creates)
                for row in updates:
                    self._update(row)
        result.created = len(creates)
        result.updated = len([r for r in updates if not r.errors])
        result.unchanged = len([r for r in good if r.existing is not None and not r.changed])
        order = {c.column: c.index for c in self.plan.columns}
        result.errors = [
            e
            for r in rows
            for e in sorted(r.errors, key=lambda e: order.get(e.column or "", len(order)))
        ]
        result.bad_rows = len([r for r in rows if r.errors])
        return result

    # -- reading cells ---------------------------------------------------------------------

    def _read_cells(self, row: _Row) -> None:
        """The row's payload: JSON values by field; lookups keep their cell text for now."""
        creating = row.existing is None
        for index, name, compiled, cell_format, is_lookup in self._columns:
            cell = row.cells[index]
            if cell is None or (isinstance(cell, str) and not cell.strip()):
                if not creating:
                    row.payload[name] = None  # an empty cell clears the field
                continue  # a new record gets the field's default
            if is_lookup:
                row.payload[name] = _LookupKey(plain_text(cell).strip())
                continue
            try:
                row.payload[name] = cell_format.parse(cell, compiled, self.cells)
            except FieldValueError as exc:
                self._cell_error(row, name, exc.code, _labelled(compiled, exc, self.lang))

    def _match_existing(self, rows: list[_Row], *, lock: bool) -> None:
        """Read each row's upsert key and fetch the records those keys name."""
        key_field = self.plan.upsert_on
        assert key_field is not None
        column = next(c for c in self.plan.mapped if c.field == key_field)
        seen = self.state.seen.setdefault((key_field,), {})
        staged = self.staged.seen.setdefault((key_field,), {})
        for row in rows:
            cell = row.cells[column.index]
            if is_empty(cell):
                continue
            try:
                row.key = self._key_value(key_field, cell)
            except FieldValueError as exc:
                compiled = self.entity.compiled.fields.get(key_field)
                message = (
                    _labelled(compiled, exc, self.lang) if compiled else exc.message(self.lang)
                )
                self._cell_error(row, key_field, exc.code, message)
                continue
            earlier = seen.get((row.key,)) or staged.get((row.key,))
            if earlier is not None:
                self._cell_error(
                    row,
                    key_field,
                    "duplicate_in_file",
                    say(
                        self.lang,
                        f"`{plain_text(cell)}` also names the record of row {earlier}; each "
                        "record may appear once in a file",
                        f"“{plain_text(cell)}”与第 {earlier} 行指向同一条记录；"
                        "每条记录在文件中只能出现一次",
                    ),
                )
                row.key = None
                continue
            staged[(row.key,)] = row.number
        keys = [r.key for r in rows if r.key is not None]
        found = self._existing(key_field, keys, lock=lock)
        for row in rows:
            if row.key is None:
                continue
            record = found.get(row.key)
            if record is not None and not self._may_update(record):
                self._cell_error(
                    row,
                    key_field,
                    "permission_denied",
                    say(
                        self.lang,
                        f"the record this row names (`{self.entity.name}` {record['id']}) is "
                        "outside what your roles let you change; remove the row or ask its owner",
                        f"此行指向的记录（`{self.entity.name}` {record['id']}）超出您的角色可修改的"
                        "范围；请删除此行或联系其负责人",
                    ),
                )
            elif record is not None and record["deleted_at"] is None:
                row.existing = record
            elif record is not None:
                self._cell_error(
                    row,
                    key_field,
                    "in_recycle_bin",
                    say(
                        self.lang,
                        f"the record this row updates (`{self.entity.name}` {record['id']}) is in "
                        "the recycle bin; restore it first, or remove the row",
                        f"此行要更新的记录（`{self.entity.name}` {record['id']}）在回收站中；"
                        "请先恢复，或删除此行",
                    ),
                )
            elif key_field == ID:
                self._cell_error(
                    row,
                    ID,
                    "unknown_record",
                    say(
                        self.lang,
                        f"`{self.entity.name}` {row.key} does not exist; leave the id empty to "
                        "create a record",
                        f"`{self.entity.name}` 记录 {row.key} 不存在；新建记录请将编号留空",
                    ),
                )

    def _may_update(self, record: Mapping[Any, Any]) -> bool:
        access = self.writer.access
        return access.bypass or access.allows_row(self.entity.name, "update", record)

    def _key_value(self, key_field: str, cell: Cell) -> Any:
        if key_field == ID:
            text = plain_text(cell).strip()
            if not text.isdigit() or int(text) < 1:
                raise FieldValueError(
                    "invalid_id", f"{text!r} is not a record id", f"“{text}”不是有效的记录编号"
                )
            return int(text)
        compiled = self.entity.compiled.fields[key_field]
        return compiled.field_type.normalise(
            format_of(compiled).parse(cell, compiled, self.cells), compiled.options
        )

    def _existing(self, key_field: str, keys: list[Any], *, lock: bool) -> dict[Any, RowMapping]:
        table = self.entity.table
        found: dict[Any, RowMapping] = {}
        for part in chunks(keys):
            query = select(table).where(table.c[key_field].in_(part))
            if lock:
                query = query.with_for_update()
            for record in self.writer.conn.execute(query).mappings():
                found[record[key_field]] = record
        return found

    # -- lookups ---------------------------------------------------------------------------

    def _resolve_lookups(self, rows: list[_Row]) -> None:
        for name, key_field in self.plan.lookup_keys.items():
            compiled = self.entity.compiled.fields[name]
            target_name = lookup_target(compiled)
            assert target_name is not None
            target = self.writer.entity(target_name)
            wanted: dict[Any, list[tuple[_Row, str]]] = {}
            for row in rows:
                given = row.payload.get(name)
                if not isinstance(given, _LookupKey):
                    continue
                try:
                    value = self._lookup_value(target, key_field, given.text)
                except FieldValueError as exc:
                    del row.payload[name]
                    self._cell_error(row, name, exc.code, _labelled(compiled, exc, self.lang))
                    continue
                cached = self.state.lookups.get((name, value))
                if cached is not None:
                    row.payload[name] = cached
                else:
                    wanted.setdefault(value, []).append((row, given.text))
            matches = self._lookup_matches(target, key_field, list(wanted))
            for value, users in wanted.items():
                live = [i for i, deleted in matches.get(value, []) if not deleted]
                for row, text in users:
                    if len(live) == 1:
                        row.payload[name] = live[0]
                        self.staged.lookups[(name, value)] = live[0]
                        continue
                    del row.payload[name]
                    code, message = self._lookup_problem(
                        compiled, target, key_field, text, live, matches.get(value, [])
                    )
                    self._cell_error(row, name, code, message)

    def _lookup_value(self, target: RuntimeEntity, key_field: str, text: str) -> Any:
        if key_field == ID:
            return self._key_value(ID, text)
        compiled = target.compiled.fields[key_field]
        return compiled.field_type.normalise(
            format_of(compiled).parse(text, compiled, self.cells), compiled.options
        )

    def _lookup_matches(
        self, target: RuntimeEntity, key_field: str, values: list[Any]
    ) -> dict[Any, list[tuple[int, bool]]]:
        table = target.table
        key = table.c[key_field]
        matches: dict[Any, list[tuple[int, bool]]] = {}
        for part in chunks(values):
            query = select(table.c.id, key, table.c.deleted_at).where(key.in_(part))
            for record_id, value, deleted_at in self.writer.conn.execute(query):
                matches.setdefault(value, []).append((int(record_id), deleted_at is not None))
        return matches

    def _lookup_problem(
        self,
        compiled: CompiledField,
        target: RuntimeEntity,
        key_field: str,
        text: str,
        live: list[int],
        found: list[tuple[int, bool]],
    ) -> tuple[str, str]:
        label = compiled.label(self.lang)
        what = "id" if key_field == ID else target.compiled.fields[key_field].label(self.lang)
        if len(live) > 1:
            ids = ", ".join(str(i) for i in live[:5])
            return "ambiguous_record", say(
                self.lang,
                f"{label}: {len(live)} `{target.name}` records have {what} “{text}” ({ids}); "
                "make the value unique or choose the record by a unique field (lookup_by)",
                f"{label}：有 {len(live)} 条 `{target.name}` 记录的{what}为“{text}”（{ids}）；"
                "请让该值唯一，或按唯一字段匹配（lookup_by）",
            )
        if found:
            return "deleted_record", say(
                self.lang,
                f"{label}: the `{target.name}` with {what} “{text}” is in the recycle bin; "
                "restore it first",
                f"{label}：{what}为“{text}”的 `{target.name}` 记录在回收站中，请先恢复",
            )
        return "unknown_record", say(
            self.lang,
            f"{label}: no `{target.name}` has {what} “{text}”; create it first or check the "
            "spelling",
            f"{label}：没有{what}为“{text}”的 `{target.name}` 记录；请先创建或检查拼写",
        )

    # -- checks ----------------------------------------------------------------------------

    def _check(self, row: _Row) -> None:
        """Normalise and check the row as the records writer does; work out what changes."""
        writer, entity, existing = self.writer, self.entity, row.existing
        checked = check_payload(
            entity.compiled,
            row.payload,
            partial=existing is not None,
            lang=self.lang,
            fill_defaults=existing is None,
        )
        before = cast(Mapping[str, Any] | None, existing)
        file_issues = check_file_values(
            writer.conn, entity, checked.values, before=before, lang=self.lang
        )
        if existing is None:
            system = {
                "id": None,
                "created_at": writer.now,
                "updated_at": writer.now,
                "owner_id": writer.actor_id,
            }
            record: dict[str, Any] = {**system, **checked.values}
            sent: set[str] | None = None
        else:
            record = {**existing, **checked.values, "updated_at": writer.now}
            sent = {k for k, v in checked.values.items() if existing[k] != v}
        flagged = {i.path for i in checked.issues}
        outcome = run_rules(writer, entity, record, changed=sent, flagged=flagged, at="")
        issues = [*checked.issues, *file_issues, *outcome.issues]
        if outcome.warnings and not self.confirm_duplicates:
            issues += warning(entity, outcome.warnings, at="", lang=self.lang).issues
        bad = row.bad_fields
        for issue in issues:
            if _field_of(issue) not in bad:
                self._issue_error(row, issue)
        row.values = {**checked.values, **outcome.formulas}
        if existing is not None:
            row.changed = {k: v for k, v in row.values.items() if existing[k] != v}

    def _check_unique(self, rows: list[_Row]) -> None:
        """Unique fields and indexes: against the file's earlier rows, then the database."""
        suspects: dict[int, _Row] = {}
        for constraint in self._constraints:
            seen = self.state.seen.setdefault(constraint, {})
            staged = self.staged.seen.setdefault(constraint, {})
            keyed: list[tuple[_Row, tuple[Any, ...]]] = []
            for row in rows:
                key = self._constraint_key(row, constraint)
                if key is None:
                    continue
                earlier = seen.get(key) or staged.get(key)
                if earlier is not None and earlier != row.number:
                    self._duplicate_in_file(row, constraint, earlier)
                    continue
                keyed.append((row, key))
                if not row.errors:
                    staged[key] = row.number
            clashes = self._clashes(constraint, [k for _, k in keyed])
            for row, key in keyed:
                own = row.existing["id"] if row.existing is not None else None
                if clashes.get(key, set()) - {own}:
                    suspects[row.number] = row
        self._check_duplicate_rules(rows)
        for row in suspects.values():
            after = _after(row)
            changed = row.changed if row.existing is not None else row.values
            own = row.existing["id"] if row.existing is not None else None
            for issue in unique_issues(
                self.writer.conn,
                self.entity,
                after,
                changed=changed,
                record_id=own,
                lang=self.lang,
            ):
                self._issue_error(row, issue)

    def _check_duplicate_rules(self, rows: list[_Row]) -> None:
        """Duplicate rules between rows of the file (the database is asked by ``run_rules``)."""
        for rule in self.rules.duplicates:
            marker = ("\0duplicate rule", rule.name)
            seen = self.state.seen.setdefault(marker, {})
            staged = self.staged.seen.setdefault(marker, {})
            normalised = rule.match == "normalised"
            for row in rows:
                if not _touches(row, rule.fields):
                    continue
                after = _after(row)
                key = tuple(duplicate_key(after.get(f), normalised=normalised) for f in rule.fields)
                if any(k is None for k in key):
                    continue
                earlier = seen.get(key) or staged.get(key)
                if earlier is None:
                    if not row.errors:
                        staged[key] = row.number
                elif rule.action == "block" or not self.confirm_duplicates:
                    self._cell_error(
                        row,
                        rule.fields[0],
                        "duplicate" if rule.action == "block" else "duplicate_warning",
                        self._duplicate_of_row(rule, earlier),
                    )

    def _duplicate_of_row(self, rule: DuplicateRule, earlier: int) -> str:
        fields = self.entity.compiled.fields
        labels = " + ".join(fields[f].label(self.lang) for f in rule.fields)
        custom = None
        if rule.message is not None:
            custom = rule.message.zh if self.lang == "zh" else rule.message.en
        what = custom or say(self.lang, f"{labels}: a duplicate", f"{labels}：重复")
        return say(
            self.lang, f"{what} (row {earlier} of this file)", f"{what}（本文件第 {earlier} 行）"
        )

    def _constraint_key(self, row: _Row, constraint: Constraint) -> tuple[Any, ...] | None:
        if not _touches(row, constraint):
            return None
        after = _after(row)
        key = tuple(after.get(name) for name in constraint)
        return None if any(v is None for v in key) else key

    def _clashes(
        self, constraint: Constraint, keys: list[tuple[Any, ...]]
    ) -> dict[tuple[Any, ...], set[int]]:
        table = self.entity.table
        columns = [table.c[name] for name in constraint]
        found: dict[tuple[Any, ...], set[int]] = {}
        for part in chunks(sorted(set(keys), key=repr)):
            condition = (
                columns[0].in_([k[0] for k in part])
                if len(columns) == 1
                else tuple_(*columns).in_(part)
            )
            for record in self.writer.conn.execute(select(table.c.id, *columns).where(condition)):
                found.setdefault(tuple(record[1:]), set()).add(int(record[0]))
        return found

    def _duplicate_in_file(self, row: _Row, constraint: Constraint, earlier: int) -> None:
        fields = self.entity.compiled.fields
        labels = " + ".join(fields[name].label(self.lang) for name in constraint)
        self._cell_error(
            row,
            constraint[0],
            "duplicate_in_file",
            say(
                self.lang,
                f"{labels}: the same value is in row {earlier} of this file; each value may "
                "appear once",
                f"{labels}：与本文件第 {earlier} 行的值重复；每个值只能出现一次",
            ),
        )

    # -- writing ---------------------------------------------------------------------------

    def _insert(self, rows: list[_Row]) -> None:
        if not rows:
            return
        writer, entity = self.writer, self.entity
        names = [n for n, f in entity.compiled.fields.items() if not is_virtual(f)]
        system = {
            "created_at": writer.now,
            "created_by": writer.actor_id,
            "owner_id": writer.actor_id,
            "version": 1,
            **writer.stamp(),
        }
        stored = [
            {**{n: r.values.get(n) for n in names}, **assign_auto_numbers(writer, entity), **system}
            for r in rows
        ]
        table = entity.table
        ids = new_record_ids(writer.conn, table, len(stored))
        for record_id, values in zip(ids, stored, strict=True):
            values["id"] = record_id
        insert_rows(writer.conn, table, stored)
        serialisers = [(n, *entity.serialisers[n]) for n in names]
        writer.audit(
            [
                AuditEvent(
                    entity.name,
                    values["id"],
                    "create",
                    # full_values() of the record's JSON, without serialising the system fields
                    {
                        "owner_id": values["owner_id"],
                        **{
                            n: None if values[n] is None else to_json(values[n], options)
                            for n, to_json, options in serialisers
                        },
                    },
                )
                for values in stored
            ]
        )

    def _update(self, row: _Row) -> None:
        existing = row.existing
        assert existing is not None
        try:
            after = self.writer.write_update(
                self.entity, existing["id"], existing["version"], row.changed, at=""
            )
        except PlatformError as exc:
            self._cell_error(row, self.plan.upsert_on, exc.code, exc.message)
            return
        old, new = self.writer.json(self.entity, existing), self.writer.json(self.entity, after)
        changes = {k: [old[k], new[k]] for k in row.changed}
        self.writer.audit([AuditEvent(self.entity.name, existing["id"], "update", changes)])

    # -- errors ----------------------------------------------------------------------------

    def _cell_error(self, row: _Row, name: str | None, code: str, message: str) -> None:
        column = self.plan.column_of(name) if name else None
        row.errors.append(RowError(row.number, column, name, code, message))

    def _issue_error(self, row: _Row, issue: Issue) -> None:
        self._cell_error(row, _field_of(issue), issue.code, issue.message)


@dataclass(frozen=True)
class _LookupKey:
    """A lookup cell before it is resolved to a record id."""

    text: str


def new_record_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """Ids for ``count`` new rows of ``table``, taken before a multi-row INSERT.

    Taking them first lets the INSERT be a plain ``executemany`` (``RETURNING``
    in parameter order makes SQLite insert row by row). PostgreSQL: the id
    column's sequence, as its default would (concurrent inserts get other
    numbers). SQLite: after the largest id, as SQLite itself would; the
    transaction's ``BEGIN IMMEDIATE`` keeps every other writer out until commit.
    """
    if count == 0:
        return []
    if conn.dialect.name == "postgresql":
        name = qualified_name(conn, table)
        sequence = conn.execute(select(func.pg_get_serial_sequence(name, "id"))).scalar_one()
        series = func.generate_series(1, count).table_valued("n").render_derived()
        query = select(func.nextval(sequence)).select_from(series).order_by(series.c.n)
        return [int(i) for i in conn.execute(query).scalars()]
    last = conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    return list(range(int(last) + 1, int(last) + count + 1))


def _touches(row: _Row, fields: Sequence[str]) -> bool:
    """Whether ``fields`` are worth checking for the row: no bad cell, and (updates) changed."""
    if row.bad_fields & set(fields):
        return False
    return row.existing is None or any(name in row.changed for name in fields)


def _after(row: _Row) -> Mapping[str, Any]:
    """The row's stored values after the write (an update: the record with the changes)."""
    return {**row.existing, **row.values} if row.existing is not None else row.values


def _field_of(issue: Issue) -> str | None:
    """The field an issue of a row points at (``/amount`` → ``amount``), or None."""
    return issue.path.lstrip("/").split("/", 1)[0] or None


def _labelled(compiled: CompiledField, exc: FieldValueError, lang: str) -> str:
    separator = "：" if lang == "zh" else ": "
    return f"{compiled.label(lang)}{separator}{exc.message(lang)}"


def _unique_constraints(entity: RuntimeEntity) -> list[Constraint]:
    fields = entity.compiled.fields
    constraints: list[Constraint] = [(n,) for n, f in fields.items() if f.definition.unique]
    for index in entity.document.indexes:
        key = tuple(index.fields)
        if index.unique and key not in constraints and all(n in fields for n in key):
            constraints.append(key)
    return constraints

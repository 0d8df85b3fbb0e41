"""Child tables: the child rows a parent's payload lists, saved in the parent's transaction.

A ``child_table`` field (``{"entity": "quote_line", "field": "quote"}``) has no
column; its value is the list of the parent's active child records. In a
create, PUT or PATCH that sends the field:

- a row without ``id`` is created (its lookup to the parent is set by the platform);
- a row with ``id`` (and ``version``) updates that child, under the usual
  optimistic rule; an ``id`` that is not an active child of this parent is an error;
- active children the list leaves out go to the recycle bin.

Each child goes through the records writer like any record (payload checks,
lookups, rules, formulas, auto-numbers, audit) and the parent's rollups over
the children are recomputed once at the end. Problems of all rows are
reported together with paths such as ``/lines/2/quantity`` (one error of
one row, such as a stale version, keeps its own kind: 409 with ``current``);
any problem writes nothing, since the whole request is one transaction.
A parent in approval locks its child tables: a row the lock refuses
(:mod:`formloom.platform.flow_locks`) stops the save with that 423 alone.

The child lookup must be ``on_delete: cascade`` (checked when publishing), so
deleting, restoring and purging the parent carry its children along through
:mod:`formloom.platform.record_cascade`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from formloom.engine.errors import Issue, pointer
from formloom.engine.fields.relations import ChildTableOptions
from formloom.platform.entity_runtime import RuntimeEntity
from formloom.platform.errors import PlatformError
from formloom.platform.flow_errors import RecordLocked
from formloom.platform.record_context import WriteContext
from formloom.platform.record_errors import invalid

if TYPE_CHECKING:
    from formloom.platform.record_writer import RecordWriter

#: Child rows by child table field name, as the payload sent them.
ChildRows = dict[str, list[dict[str, Any]]]


def take_children(entity: RuntimeEntity, values: dict[str, Any], sent: Any) -> ChildRows:
    """Remove the values of column-less fields from ``values``; return the child tables sent.

    ``sent`` is the request payload: only child tables it names are saved (a null
    value empties the table).
    """
    children: ChildRows = {}
    for name, compiled in entity.compiled.fields.items():
        if not compiled.field_type.virtual:
            continue
        value = values.pop(name, None)
        named = isinstance(sent, dict) and name in sent
        if isinstance(compiled.options, ChildTableOptions) and named:
            children[name] = list(value or [])
    return children


def save_children(
    writer: RecordWriter, entity: RuntimeEntity, parent_id: int, children: ChildRows, *, at: str
) -> None:
    """Create, update and delete child records so each table holds exactly the rows sent."""
    issues: list[Issue] = []
    errors: list[PlatformError] = []
    for name, rows in children.items():
        options = entity.compiled.fields[name].options
        assert isinstance(options, ChildTableOptions)
        child = writer.entity(options.entity)
        current = set(_child_ids(writer, child, options.field, parent_id))
        listed: set[int] = set()
        for i, row in enumerate(rows):
            path = at + pointer(name, i)
            payload = {k: v for k, v in row.items() if k != "id"}
            payload[options.field] = parent_id
            child_id = row.get("id")
            try:
                if child_id is None:
                    writer.create(child, payload, at=path)
                    continue
                if isinstance(child_id, bool) or not isinstance(child_id, int):
                    issues.append(_not_a_child(writer, entity, name, child.name, child_id, path))
                    continue
                if child_id not in current:
                    issues.append(_not_a_child(writer, entity, name, child.name, child_id, path))
                    continue
                listed.add(child_id)
                writer.update(child, child_id, payload, version=None, replace=False, at=path)
            except RecordLocked:
                raise
            except PlatformError as exc:
                errors.append(exc)
                issues += exc.issues or [Issue(path, exc.code, exc.message)]
        for child_id in sorted(current - listed):
            try:
                writer.delete(child, child_id, version=None, at=at + pointer(name))
            except RecordLocked:
                raise
            except PlatformError as exc:
                errors.append(exc)
                issues += exc.issues or [Issue(at + pointer(name), exc.code, exc.message)]
    if len(errors) == 1 and len(issues) == len(errors[0].issues):
        raise errors[0]
    if issues:
        raise invalid(issues)


def with_children(
    ctx: WriteContext, entity: RuntimeEntity, record: dict[str, Any]
) -> dict[str, Any]:
    """``record`` with each child table's active rows (ordered by id) as child record JSON."""
    for name, compiled in entity.compiled.fields.items():
        options = compiled.options
        if not isinstance(options, ChildTableOptions):
            continue
        child = ctx.entity(options.entity)
        table = child.table
        rows = ctx.conn.execute(
            select(table)
            .where(table.c[options.field] == record["id"], table.c.deleted_at.is_(None))
            .order_by(table.c.id)
        ).all()
        record[name] = [ctx.json(child, r._mapping) for r in rows]
    return record


def _child_ids(ctx: WriteContext, child: RuntimeEntity, link: str, parent_id: int) -> list[int]:
    table = child.table
    query = select(table.c.id).where(table.c[link] == parent_id, table.c.deleted_at.is_(None))
    return [int(i) for i in ctx.conn.execute(query).scalars()]


def _not_a_child(
    ctx: WriteContext, entity: RuntimeEntity, name: str, child: str, child_id: Any, path: str
) -> Issue:
    message = ctx.say(
        f"`{child}` {child_id!r} is not a row of this `{entity.name}`'s `{name}`; leave out "
        "`id` to add a new row, or use the ids this record's GET returns",
        f"`{child}` 记录 {child_id!r} 不是此 `{entity.name}` 的 `{name}` 中的行；新增行请不要提供 "
        "`id`，或使用本记录 GET 返回的编号",
    )
    return Issue(path + "/id", "not_a_child", message)

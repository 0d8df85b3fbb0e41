"""What deleting, restoring and purging a record does to the records that look it up.

Each lookup field declares ``on_delete``:

- ``restrict`` (default): the delete is refused while active records look the
  record up; the error names the entity, the field, how many and a few ids.
- ``set_null``: those records' lookup is cleared (version bump, audit entry).
- ``cascade``: those records are soft-deleted too, recursively, each with an
  audit entry naming the cause. They share the deleted record's ``deleted_at``,
  so restoring the record restores them as well (unless they look up other
  records that are still deleted; those stay in the recycle bin).

A purge removes rows for good, so references from deleted records count too:
records in the recycle bin that look the record up are purged with it
(``cascade``), cleared (``set_null``) or stop the purge (``restrict``); active
ones always stop it. Retired lookup fields and removed entities are cleared,
since their foreign keys would refuse the purge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, delete, func, select, update

from formloom.engine.errors import Issue
from formloom.platform.audit import AuditEvent
from formloom.platform.entity_runtime import RuntimeEntity
from formloom.platform.record_checks import lookup_issues
from formloom.platform.record_context import WriteContext, full_values
from formloom.platform.record_errors import DeleteRestricted
from formloom.platform.record_references import Reference, chunks, record_table

SAMPLE_IDS = 5


def after_delete(ctx: WriteContext, target: str, ids: list[int], *, at: str) -> None:
    """Apply the on-delete rules of every lookup of ``target`` to records ``ids`` (just deleted)."""
    references = [r for r in ctx.references(target) if r.live]
    blocks = [
        issue
        for ref in references
        if ref.on_delete == "restrict"
        for issue in _restrict_issue(ctx, ref, target, ids, at=at)
    ]
    if blocks:
        raise DeleteRestricted(blocks[0].message, issues=blocks)
    for ref in references:
        if ref.on_delete == "set_null":
            _set_null(ctx, ref, target, ids)
        elif ref.on_delete == "cascade":
            _cascade_delete(ctx, ref, target, ids, at=at)


def _restrict_issue(
    ctx: WriteContext, ref: Reference, target: str, ids: list[int], *, at: str
) -> list[Issue]:
    table = record_table(ref.entity, ref.field)
    column = table.c[ref.field]
    count, sample = 0, list[int]()
    for part in chunks(ids):
        where = (column.in_(part), table.c.deleted_at.is_(None))
        count += ctx.conn.execute(
            select(func.count()).select_from(table).where(*where)
        ).scalar_one()
        if len(sample) < SAMPLE_IDS:
            found = select(table.c.id).where(*where).order_by(table.c.id).limit(SAMPLE_IDS)
            sample += [int(i) for i in ctx.conn.execute(found).scalars()]
    if not count:
        return []
    shown = ", ".join(str(i) for i in sample[:SAMPLE_IDS]) + (", …" if count > SAMPLE_IDS else "")
    what = f"`{target}` {_ids(ids)}"
    message = ctx.say(
        f"cannot delete {what}: {count} `{ref.entity}` record(s) look it up through field "
        f"`{ref.field}` (ids {shown}), whose on_delete is `restrict`; delete those records or "
        "point them at another record first, or change the field's on_delete to `set_null` "
        "or `cascade`",
        f"无法删除 {what}：有 {count} 条 `{ref.entity}` 记录通过字段 `{ref.field}` 引用它"
        f"（编号 {shown}），该字段的删除规则为 `restrict`；请先删除这些记录或改为引用其他记录，"
        "或将该字段的删除规则改为 `set_null` 或 `cascade`",
    )
    return [Issue(at, DeleteRestricted.code, message)]


@dataclass(frozen=True)
class Link:
    """Record ``id`` (deleted or not) looks up record ``target_id`` through one column."""

    id: int
    target_id: int
    deleted: bool


def _links(
    ctx: WriteContext, ref: Reference, ids: list[int], *, only_active: bool, lock: bool = False
) -> list[Link]:
    """The records that look up one of ``ids`` through ``ref``."""
    table = record_table(ref.entity, ref.field)
    column = table.c[ref.field]
    links = []
    for part in chunks(ids):
        query = select(table.c.id, column, table.c.deleted_at).where(column.in_(part))
        if only_active:
            query = query.where(table.c.deleted_at.is_(None))
        if lock:
            query = query.with_for_update()
        links += [Link(int(r[0]), int(r[1]), r[2] is not None) for r in ctx.conn.execute(query)]
    return links


def _set_null(ctx: WriteContext, ref: Reference, target: str, ids: list[int]) -> None:
    """Clear ``ref.field`` of the active records that look up one of ``ids``."""
    links = _links(ctx, ref, ids, only_active=True, lock=True)
    _clear(ctx, ref, target, links, action="delete")


def _clear(
    ctx: WriteContext, ref: Reference, target: str, links: list[Link], *, action: str
) -> None:
    """Set ``ref.field`` of the ``links`` to null, with a new version and an audit entry."""
    table = record_table(ref.entity, ref.field)
    for part in chunks(links):
        ctx.conn.execute(
            update(table)
            .where(table.c.id.in_([link.id for link in part]))
            .values({ref.field: None, "version": table.c.version + 1, **ctx.stamp()})
        )
    ctx.audit(
        [
            AuditEvent(
                ref.entity,
                link.id,
                "update",
                {ref.field: [link.target_id, None]},
                _cause(target, link.target_id, ref, action),
            )
            for link in links
        ]
    )


def _cascade_delete(
    ctx: WriteContext, ref: Reference, target: str, ids: list[int], *, at: str
) -> None:
    child = ctx.entity(ref.entity)
    table = child.table
    deleted: list[int] = []
    events = []
    for part in chunks(ids):
        rows = ctx.conn.execute(
            update(table)
            .where(table.c[ref.field].in_(part), table.c.deleted_at.is_(None))
            .values(deleted_at=ctx.now, version=table.c.version + 1, **ctx.stamp())
            .returning(*table.c)
        ).all()
        for row in rows:
            record = ctx.json(child, row._mapping)
            cause = _cause(target, row._mapping[ref.field], ref, "delete")
            events.append(
                AuditEvent(child.name, row.id, "delete", full_values(record, child), cause)
            )
            deleted.append(int(row.id))
    ctx.audit(events)
    if deleted:
        after_delete(ctx, child.name, deleted, at=at)


# -- restore --------------------------------------------------------------------------------


def restore_cascaded(ctx: WriteContext, target: str, ids: list[int], deleted_at: datetime) -> None:
    """Restore the records a cascade deleted together with ``ids`` (same ``deleted_at``)."""
    for ref in ctx.references(target):
        if not ref.live or ref.on_delete != "cascade":
            continue
        child = ctx.entity(ref.entity)
        table = child.table
        restored: list[int] = []
        events = []
        for part in chunks(ids):
            candidates = ctx.conn.execute(
                select(table).where(table.c[ref.field].in_(part), table.c.deleted_at == deleted_at)
            ).all()
            for row in candidates:
                if restore_blocks(ctx, child, row._mapping, at=""):
                    continue
                ctx.conn.execute(
                    update(table)
                    .where(table.c.id == row.id, table.c.version == row.version)
                    .values(deleted_at=None, version=table.c.version + 1, **ctx.stamp())
                )
                cause = _cause(target, row._mapping[ref.field], ref, "restore")
                changes = {"deleted_at": [deleted_at.isoformat(), None]}
                events.append(AuditEvent(child.name, row.id, "restore", changes, cause))
                restored.append(int(row.id))
        ctx.audit(events)
        if restored:
            restore_cascaded(ctx, child.name, restored, deleted_at)


def restore_blocks(
    ctx: WriteContext, entity: RuntimeEntity, row: RowMapping, *, at: str
) -> list[Issue]:
    """Why a deleted record cannot come back: its lookups name deleted or missing records."""
    lookups = {
        name: row[name]
        for name, compiled in entity.compiled.fields.items()
        if compiled.field_type.references(compiled.definition.options) is not None
    }
    return lookup_issues(ctx.conn, entity, lookups, at=at, lang=ctx.lang)


# -- purge ----------------------------------------------------------------------------------


@dataclass
class PurgePlan:
    """The rows a purge removes (by entity), the references it clears, and what stops it."""

    doomed: dict[str, dict[int, RowMapping]] = field(default_factory=dict)
    clear: list[tuple[Reference, str, list[Link]]] = field(default_factory=list)
    unlink: list[tuple[Reference, list[int]]] = field(default_factory=list)
    blocks: list[Issue] = field(default_factory=list)
    causes: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)


def plan_purge(ctx: WriteContext, entity: RuntimeEntity, row: RowMapping, *, at: str) -> PurgePlan:
    """Follow the references of a deleted record to everything its purge touches."""
    plan = PurgePlan(doomed={entity.name: {int(row["id"]): row}})
    frontier: list[tuple[str, list[int]]] = [(entity.name, [int(row["id"])])]
    while frontier:
        target, ids = frontier.pop()
        for ref in ctx.references(target):
            links = _links(ctx, ref, ids, only_active=False)
            doomed = plan.doomed.get(ref.entity, {})
            gone = [link.id for link in links if link.id in doomed]
            if gone:
                plan.unlink.append((ref, gone))
            links = [link for link in links if link.id not in doomed]
            if links:
                _plan_reference(ctx, plan, ref, target, links, frontier, at=at)
    return plan


def _plan_reference(
    ctx: WriteContext,
    plan: PurgePlan,
    ref: Reference,
    target: str,
    links: list[Link],
    frontier: list[tuple[str, list[int]]],
    *,
    at: str,
) -> None:
    if not ref.live:
        plan.clear.append((ref, target, links))
        return
    active = [link.id for link in links if not link.deleted]
    deleted = [link.id for link in links if link.deleted]
    if active:
        plan.blocks.append(_purge_block(ctx, ref, target, links, active, in_bin=False, at=at))
    elif ref.on_delete == "restrict":
        plan.blocks.append(_purge_block(ctx, ref, target, links, deleted, in_bin=True, at=at))
    elif ref.on_delete == "set_null":
        plan.clear.append((ref, target, links))
    else:
        child = ctx.entity(ref.entity)
        doomed = plan.doomed.setdefault(ref.entity, {})
        for part in chunks(deleted):
            query = select(child.table).where(child.table.c.id.in_(part))
            doomed.update({int(r.id): r._mapping for r in ctx.conn.execute(query)})
        for link in links:
            plan.causes[(ref.entity, link.id)] = _cause(target, link.target_id, ref, "purge")
        plan.unlink.append((ref, deleted))
        frontier.append((ref.entity, deleted))


def _purge_block(
    ctx: WriteContext,
    ref: Reference,
    target: str,
    links: list[Link],
    blocking: list[int],
    *,
    in_bin: bool,
    at: str,
) -> Issue:
    targets = sorted({link.target_id for link in links})
    what = f"`{target}` {_ids(targets)}"
    shown = _ids(blocking)
    if in_bin:
        message = ctx.say(
            f"cannot purge {what}: `{ref.entity}` {shown} in the recycle bin look it up through "
            f"`{ref.field}` (on_delete `restrict`); purge those records first",
            f"无法彻底删除 {what}：回收站中的 `{ref.entity}` 记录 {shown} 通过字段 `{ref.field}` "
            "引用它（删除规则 `restrict`），请先彻底删除这些记录",
        )
    else:
        message = ctx.say(
            f"cannot purge {what}: active `{ref.entity}` {shown} look it up through "
            f"`{ref.field}`; delete them or point them at another record first",
            f"无法彻底删除 {what}：有效的 `{ref.entity}` 记录 {shown} 通过字段 `{ref.field}` "
            "引用它，请先删除这些记录或改为引用其他记录",
        )
    return Issue(at, DeleteRestricted.code, message)


def carry_out_purge(ctx: WriteContext, plan: PurgePlan) -> None:
    """Clear references, unlink the doomed rows from each other, delete them, audit it all."""
    for ref, target, links in plan.clear:
        _clear(ctx, ref, target, links, action="purge")
    for ref, ids in plan.unlink:
        table = record_table(ref.entity, ref.field)
        for part in chunks(ids):
            ctx.conn.execute(update(table).where(table.c.id.in_(part)).values({ref.field: None}))
    events = []
    for name, doomed in plan.doomed.items():
        entity = ctx.entity(name)
        for part in chunks(sorted(doomed)):
            ctx.conn.execute(delete(entity.table).where(entity.table.c.id.in_(part)))
        for record_id, row in doomed.items():
            values = full_values(ctx.json(entity, row), entity)
            cause = plan.causes.get((name, record_id))
            events.append(AuditEvent(name, record_id, "purge", values, cause))
    ctx.audit(events)


def _cause(target: str, record_id: Any, ref: Reference, action: str) -> dict[str, Any]:
    return {
        "entity": target,
        "id": record_id,
        "action": action,
        "field": ref.field,
        "on_delete": ref.on_delete,
    }


def _ids(ids: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:SAMPLE_IDS])
    return shown + (f" (and {len(ids) - SAMPLE_IDS} more)" if len(ids) > SAMPLE_IDS else "")

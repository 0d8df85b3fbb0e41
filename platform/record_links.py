"""Multi-lookups: the ordered ids a record links to, kept in the field's junction table.

A ``multi_lookup`` field (``{"entity": "tag"}``) has no column; its junction
table ``<entity>__<field>`` holds (record_id, target_id, position). A write
that sends the field replaces the list: ids must name active records of the
target (like single lookups, issues at ``/<field>/<position>``); duplicates
are dropped, order is kept. A change of the list is part of the record's
update: new ``version``, one audit entry with the old and new lists.

Reads return the ids of active targets in order: a target in the recycle bin
keeps its junction row (restoring it brings the link back) but is left out;
purging either side deletes the rows (``ON DELETE CASCADE``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, delete, insert, select

from formloom.engine.errors import Issue, pointer
from formloom.engine.fields.relations import MultiLookupOptions
from formloom.platform.entity_runtime import RuntimeEntity
from formloom.platform.entity_tables import junction_table
from formloom.platform.record_context import WriteContext
from formloom.platform.record_references import chunks, record_table

#: Linked ids by multi-lookup field name.
Links = dict[str, list[int]]


def take_links(entity: RuntimeEntity, values: dict[str, Any], sent: Any) -> Links:
    """Remove multi-lookup values from ``values``; return those the payload ``sent`` names."""
    links: Links = {}
    for name, compiled in entity.compiled.fields.items():
        if isinstance(compiled.options, MultiLookupOptions):
            value = values.pop(name, None)
            if isinstance(sent, dict) and name in sent:
                links[name] = list(value or [])
    return links


def link_issues(ctx: WriteContext, entity: RuntimeEntity, links: Links, *, at: str) -> list[Issue]:
    """Ids that name no record of the target, or one in the recycle bin."""
    issues: list[Issue] = []
    for name, ids in links.items():
        target = _options(entity, name).entity
        table = record_table(target)
        deleted_at: dict[int, Any] = {}
        for part in chunks(ids):
            query = select(table.c.id, table.c.deleted_at).where(table.c.id.in_(part))
            deleted_at.update({int(r.id): r.deleted_at for r in ctx.conn.execute(query)})
        label = entity.compiled.fields[name].label(ctx.lang)
        for position, record_id in enumerate(ids):
            path = at + pointer(name, position)
            if record_id not in deleted_at:
                message = ctx.say(
                    f"{label}: `{target}` {record_id} does not exist; choose existing records",
                    f"{label}：`{target}` 记录 {record_id} 不存在，请选择已有的记录",
                )
                issues.append(Issue(path, "unknown_record", message))
            elif deleted_at[record_id] is not None:
                message = ctx.say(
                    f"{label}: `{target}` {record_id} is in the recycle bin; restore it or "
                    "leave it out",
                    f"{label}：`{target}` 记录 {record_id} 在回收站中，请先恢复或移除",
                )
                issues.append(Issue(path, "deleted_record", message))
    return issues


def changed_links(
    ctx: WriteContext, entity: RuntimeEntity, record_id: int | None, links: Links
) -> dict[str, tuple[list[int], list[int]]]:
    """The fields whose list differs from the stored one: (old, new)."""
    changes = {}
    for name, ids in links.items():
        old = [] if record_id is None else _stored(ctx, entity, name, record_id, live=False)
        if old != ids:
            changes[name] = (old, ids)
    return changes


def save_links(
    ctx: WriteContext,
    entity: RuntimeEntity,
    record_id: int,
    changes: dict[str, tuple[list[int], list[int]]],
) -> None:
    """Replace the junction rows of each changed field with the new ids, in order."""
    for name, (_old, ids) in changes.items():
        table = _table(entity, name)
        ctx.conn.execute(delete(table).where(table.c.record_id == record_id))
        if ids:
            rows = [
                {"record_id": record_id, "target_id": t, "position": i} for i, t in enumerate(ids)
            ]
            ctx.conn.execute(insert(table), rows)


def with_links(ctx: WriteContext, entity: RuntimeEntity, record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with each multi-lookup's ids of active targets, in order."""
    for name, compiled in entity.compiled.fields.items():
        if isinstance(compiled.options, MultiLookupOptions):
            record[name] = _stored(ctx, entity, name, record["id"], live=True)
    return record


def _stored(
    ctx: WriteContext, entity: RuntimeEntity, name: str, record_id: int, *, live: bool
) -> list[int]:
    table = _table(entity, name)
    query = select(table.c.target_id).where(table.c.record_id == record_id)
    if live:
        target = record_table(_options(entity, name).entity)
        query = query.join(target, target.c.id == table.c.target_id).where(
            target.c.deleted_at.is_(None)
        )
    return [int(i) for i in ctx.conn.execute(query.order_by(table.c.position)).scalars()]


def _options(entity: RuntimeEntity, name: str) -> MultiLookupOptions:
    options = entity.compiled.fields[name].options
    assert isinstance(options, MultiLookupOptions)
    return options


def _table(entity: RuntimeEntity, name: str) -> Table:
    return junction_table(entity.name, name, _options(entity, name).entity)

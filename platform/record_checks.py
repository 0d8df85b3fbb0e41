"""Checks of a record's values against the database, before anything is written.

Lookups must name records that exist and are not in the recycle bin; unique
fields (and unique indexes) must not repeat another record's value. Both are
reported as issues at the field, in the caller's language, so that a payload's
problems all come back together. The database constraints stay as the last
line of defence against races (see :mod:`formloom.platform.records`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Table, and_, select

from formloom.engine.errors import Issue, pointer
from formloom.platform.access import Access
from formloom.platform.entity_runtime import RuntimeEntity
from formloom.platform.record_errors import say
from formloom.platform.record_references import chunks, record_table


def lookup_issues(
    conn: Connection,
    entity: RuntimeEntity,
    values: Mapping[str, Any],
    *,
    at: str = "",
    lang: str = "en",
    access: Access | None = None,
) -> list[Issue]:
    """Issues for lookup values in ``values`` that name no record or a deleted one.

    With ``access``, a record the actor may not read counts as one that does not
    exist: a lookup can neither point at it nor reveal that it exists.
    """
    wanted: dict[str, list[tuple[str, int]]] = {}
    for name, value in values.items():
        compiled = entity.compiled.fields.get(name)
        if compiled is None or value is None:
            continue
        target = compiled.field_type.references(compiled.definition.options)
        if target is not None:
            wanted.setdefault(target, []).append((name, int(value)))
    issues = []
    for target, pairs in wanted.items():
        table = record_table(target, "owner_id")
        deleted_at: dict[int, Any] = {}
        readable = access is None or access.may(target, "read")
        for ids in chunks(sorted({record_id for _, record_id in pairs})):
            query = select(table.c.id, table.c.deleted_at, table.c.owner_id).where(
                table.c.id.in_(ids)
            )
            deleted_at.update(
                {
                    row.id: row.deleted_at
                    for row in conn.execute(query)
                    if access is None
                    or (readable and access.allows_row(target, "read", row._mapping))
                }
            )
        for name, record_id in pairs:
            label = entity.compiled.fields[name].label(lang)
            path = at + pointer(name)
            if record_id not in deleted_at:
                issues.append(
                    Issue(
                        path,
                        "unknown_record",
                        say(
                            lang,
                            f"{label}: `{target}` {record_id} does not exist; "
                            f"choose an existing `{target}` record",
                            f"{label}：`{target}` 记录 {record_id} 不存在，请选择已有的记录",
                        ),
                    )
                )
            elif deleted_at[record_id] is not None:
                issues.append(
                    Issue(
                        path,
                        "deleted_record",
                        say(
                            lang,
                            f"{label}: `{target}` {record_id} is in the recycle bin; "
                            "restore it first or choose another record",
                            f"{label}：`{target}` 记录 {record_id} 在回收站中，"
                            "请先恢复它或选择其他记录",
                        ),
                    )
                )
    return issues


def unique_issues(
    conn: Connection,
    entity: RuntimeEntity,
    row: Mapping[str, Any],
    *,
    changed: Iterable[str],
    record_id: int | None,
    at: str = "",
    lang: str = "en",
) -> list[Issue]:
    """Issues for unique fields and unique indexes that ``changed`` touches.

    ``row`` holds the record's stored values after the write (for an update: the
    old row with the changes applied); ``record_id`` is the record itself (not a
    duplicate of itself). Records in the recycle bin count: their values still
    hold the database's unique index.
    """
    touched = set(changed)
    issues = []
    for name, compiled in entity.compiled.fields.items():
        if name not in touched or not compiled.definition.unique or row.get(name) is None:
            continue
        clash = _clash(conn, entity.table, {name: row[name]}, record_id)
        if clash is not None:
            shown = f"`{compiled.to_json(row[name])}`"
            issues.append(
                _duplicate(entity, compiled.label(lang), shown, clash, at + pointer(name), lang)
            )
    for index in entity.document.indexes:
        fields = index.fields
        if not index.unique or not touched & set(fields):
            continue
        if any(f not in entity.compiled.fields or row.get(f) is None for f in fields):
            continue
        clash = _clash(conn, entity.table, {f: row[f] for f in fields}, record_id)
        if clash is not None:
            shown = ", ".join(f"`{entity.compiled.fields[f].to_json(row[f])}`" for f in fields)
            labels = " + ".join(entity.compiled.fields[f].label(lang) for f in fields)
            issues.append(
                _duplicate(entity, labels, f"({shown})", clash, at + pointer(fields[0]), lang)
            )
    return issues


def _clash(
    conn: Connection, table: Table, values: dict[str, Any], record_id: int | None
) -> tuple[int, bool] | None:
    """The id of another record with these values and whether it is deleted, or None."""
    query = select(table.c.id, table.c.deleted_at).where(
        and_(*(table.c[name] == value for name, value in values.items()))
    )
    if record_id is not None:
        query = query.where(table.c.id != record_id)
    found = conn.execute(query.limit(1)).first()
    return None if found is None else (int(found.id), found.deleted_at is not None)


def _duplicate(
    entity: RuntimeEntity, label: str, shown: str, clash: tuple[int, bool], path: str, lang: str
) -> Issue:
    other, deleted = clash
    if deleted:
        en = (
            f"{label}: {shown} is already used by `{entity.name}` {other}, which is in the "
            "recycle bin; purge or restore and change that record, or choose another value"
        )
        zh = (
            f"{label}：{shown} 已被 `{entity.name}` 记录 {other} 使用（该记录在回收站中），"
            "请彻底删除或恢复并修改该记录，或换一个值"
        )
    else:
        en = f"{label}: {shown} is already used by `{entity.name}` {other}; choose another value"
        zh = f"{label}：{shown} 已被 `{entity.name}` 记录 {other} 使用，请换一个值"
    return Issue(path, "duplicate", say(lang, en, zh))

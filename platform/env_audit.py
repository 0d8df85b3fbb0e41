"""The audit trail of one environment, for administrators: record writes and metadata publishes.

Both already live inside the environment, written in the transaction of the
change itself (``fl_audit`` for records, ``fl_meta_version`` for metadata, whose
``published_by`` names who published): this module only reads them, with
filters, newest first, a page at a time or as a CSV file. Logins, credentials
and user administration are workspace-wide: :mod:`formloom.platform.security_audit`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from formloom.platform.access import require_admin
from formloom.platform.audit import event_as_dict
from formloom.platform.database import Workspace
from formloom.platform.environments import require_environment_in
from formloom.platform.principal import Principal
from formloom.platform.tables import audit, meta_version

MAX_LIMIT = 500
EXPORT_PAGE = 1000


@dataclass(frozen=True)
class RecordFilter:
    """Which record writes to show (every field optional)."""

    entity: str | None = None
    record_id: int | None = None
    action: str | None = None
    actor_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def record_writes(
    workspace: Workspace,
    *,
    env: str,
    principal: Principal,
    selection: RecordFilter,
    limit: int = 100,
    after: int | None = None,
    lang: str = "en",
) -> dict[str, Any]:
    """Record writes, newest first: ``{items, next}`` (``next``: pass as ``after``)."""
    require_admin(principal, lang=lang)
    with workspace.begin(env, readonly=True) as conn:
        require_environment_in(conn, env)
        rows = conn.execute(_writes(selection, after).limit(limit + 1)).all()
    items = [event_as_dict(row) for row in rows[:limit]]
    return {"items": items, "next": items[-1]["id"] if len(rows) > limit else None}


def export_record_writes(
    workspace: Workspace, *, env: str, principal: Principal, selection: RecordFilter
) -> Iterator[bytes]:
    """Every matching record write as CSV (UTF-8 with BOM), produced a page at a time."""
    require_admin(principal)
    with workspace.begin(env, readonly=True) as conn:
        require_environment_in(conn, env)
    return _csv(workspace, env, selection)


def _csv(workspace: Workspace, env: str, selection: RecordFilter) -> Iterator[bytes]:
    header = ["id", "at", "actor", "entity", "record_id", "action", "changes", "cause"]
    yield "\ufeff".encode() + _line(header)
    after = None
    while True:
        with workspace.begin(env, readonly=True) as conn:
            rows = conn.execute(_writes(selection, after).limit(EXPORT_PAGE)).all()
        for row in rows:
            yield _line(
                [
                    row.id,
                    row.at.isoformat(),
                    row.actor,
                    row.entity,
                    row.record_id,
                    row.action,
                    json.dumps(row.changes, ensure_ascii=False),
                    json.dumps(row.cause, ensure_ascii=False) if row.cause else "",
                ]
            )
        if len(rows) < EXPORT_PAGE:
            return
        after = rows[-1].id


def _line(values: list[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue().encode()


def _writes(selection: RecordFilter, after: int | None) -> Select[Any]:
    query = select(audit).order_by(audit.c.id.desc())
    if after is not None:
        query = query.where(audit.c.id < after)
    if selection.entity is not None:
        query = query.where(audit.c.entity == selection.entity)
    if selection.record_id is not None:
        query = query.where(audit.c.record_id == selection.record_id)
    if selection.action is not None:
        query = query.where(audit.c.action == selection.action)
    if selection.actor_id is not None:
        query = query.where(audit.c.actor == selection.actor_id)
    if selection.since is not None:
        query = query.where(audit.c.at >= selection.since)
    if selection.until is not None:
        query = query.where(audit.c.at < selection.until)
    return query


def metadata_publishes(
    workspace: Workspace,
    *,
    env: str,
    principal: Principal,
    kind: str | None = None,
    published_by: str | None = None,
    limit: int = 100,
    lang: str = "en",
) -> list[dict[str, Any]]:
    """Metadata versions published (publish, rollback, remove), newest first."""
    require_admin(principal, lang=lang)
    query = (
        select(
            meta_version.c.kind,
            meta_version.c.name,
            meta_version.c.version,
            meta_version.c.action,
            meta_version.c.comment,
            meta_version.c.published_at,
            meta_version.c.published_by,
        )
        .order_by(meta_version.c.published_at.desc(), meta_version.c.version.desc())
        .limit(limit)
    )
    if kind is not None:
        query = query.where(meta_version.c.kind == kind)
    if published_by is not None:
        query = query.where(meta_version.c.published_by == published_by)
    with workspace.begin(env, readonly=True) as conn:
        require_environment_in(conn, env)
        rows = conn.execute(query).all()
    return [
        {
            "kind": r.kind,
            "name": r.name,
            "version": r.version,
            "action": r.action,
            "comment": r.comment,
            "published_at": r.published_at.isoformat(),
            "published_by": r.published_by,
        }
        for r in rows
    ]

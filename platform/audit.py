"""The audit log of records: who did what to which record, when, with the values.

One ``fl_audit`` row per create, update, delete, restore, purge and owner
transfer (``changes`` ``{"owner_id": [before, after]}``), written on the
caller's connection, in the transaction of the change itself: a change commits
with its audit entry or not at all. ``changes`` holds JSON values (as the
records API shows them): every field for create, delete and purge,
``{field: [before, after]}`` for updates and restores. ``cause`` names the
record whose deletion (or purge) set this one's lookup to null or deleted it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Row, insert, select

from formloom.platform.row_copy import insert_rows
from formloom.platform.tables import audit

Action = Literal["create", "update", "delete", "restore", "purge", "transfer"]
MAX_HISTORY_LIMIT = 1000


@dataclass(frozen=True)
class AuditEvent:
    """One change of one record, ready to be written."""

    entity: str
    record_id: int
    action: Action
    changes: dict[str, Any]
    cause: dict[str, Any] | None = None


def record_events(
    conn: Connection, events: list[AuditEvent], *, actor_id: int | None, at: datetime
) -> None:
    """Write ``events`` (one statement; several with ``COPY`` on PostgreSQL) in the caller's
    transaction."""
    if not events:
        return
    rows = [
        {
            "entity": e.entity,
            "record_id": e.record_id,
            "action": e.action,
            "actor": actor_id,
            "at": at,
            "changes": e.changes,
            "cause": e.cause,
        }
        for e in events
    ]
    if len(rows) == 1:
        conn.execute(_INSERT, rows[0])
    else:
        insert_rows(conn, audit, rows)


_INSERT = insert(audit)


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{field: [before, after]}`` for every key of ``after`` whose value differs."""
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}


def history(
    conn: Connection, *, entity: str, record_id: int, limit: int, before: int | None = None
) -> list[dict[str, Any]]:
    """A record's audit entries, newest first; ``before`` (an entry id) pages on."""
    query = (
        select(audit)
        .where(audit.c.entity == entity, audit.c.record_id == record_id)
        .order_by(audit.c.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(audit.c.id < before)
    return [event_as_dict(row) for row in conn.execute(query)]


def event_as_dict(row: Row[Any]) -> dict[str, Any]:
    """A JSON-ready view of an ``fl_audit`` row."""
    return {
        "id": row.id,
        "entity": row.entity,
        "record_id": row.record_id,
        "action": row.action,
        "actor": row.actor,
        "at": row.at.isoformat(),
        "changes": row.changes,
        "cause": row.cause,
    }

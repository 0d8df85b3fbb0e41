"""The security audit log: who logged in, who changed which user, role, team or credential.

Append-only: :func:`record` inserts on the caller's connection, in the
transaction of the change itself, and nothing updates or deletes a row. Entries
never hold a secret (passwords, tokens and keys are not passed in; a key shows
up by its non-secret prefix). :func:`list_entries` reads newest first with a
keyset cursor (``after`` = the last id seen), :func:`csv_chunks` exports the
same selection.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, insert, select

from formloom.platform.caller import Caller
from formloom.platform.database import Workspace
from formloom.platform.tables import security_audit, user
from formloom.platform.user_managers import MANAGEMENT_ENV, require_audit_reader

MAX_LIMIT = 1000
CSV_COLUMNS = ("id", "at", "actor_id", "actor_login", "action", "target", "ip", "details")


def record(
    conn: Connection,
    *,
    action: str,
    at: datetime,
    caller: Caller | None = None,
    actor_id: int | None = None,
    target: str = "",
    details: Mapping[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    """Append one entry; the actor and address default to the caller's."""
    if caller is not None:
        actor_id = caller.principal.user_id if actor_id is None else actor_id
        ip = caller.ip if ip is None else ip
    conn.execute(
        insert(security_audit).values(
            at=at,
            actor_id=actor_id,
            action=action,
            target=target[:200],
            details=dict(details or {}),
            ip=ip,
        )
    )


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to read: every given condition must hold."""

    action: str | None = None
    actor_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_entries(
    workspace: Workspace,
    selection: AuditFilter,
    *,
    caller: Caller,
    limit: int = 100,
    after: int | None = None,
) -> dict[str, Any]:
    """A page of entries, newest first: ``{items, next}`` (``next``: pass as ``after``)."""
    limit = max(1, min(limit, MAX_LIMIT))
    with workspace.begin(MANAGEMENT_ENV, readonly=True) as conn:
        require_audit_reader(conn, caller.principal, lang=caller.lang)
        rows = conn.execute(_query(selection, after).limit(limit + 1)).all()
    items = [_entry(row._mapping) for row in rows[:limit]]
    more = len(rows) > limit
    return {"items": items, "next": str(items[-1]["id"]) if more else None}


def export_csv(workspace: Workspace, selection: AuditFilter, *, caller: Caller) -> Iterator[bytes]:
    """The selected entries as CSV (UTF-8 with a BOM), newest first, page by page.

    The permission is checked now, before the first chunk is asked for.
    """
    with workspace.begin(MANAGEMENT_ENV, readonly=True) as conn:
        require_audit_reader(conn, caller.principal, lang=caller.lang)
    return _csv_chunks(workspace, selection, caller)


def _csv_chunks(workspace: Workspace, selection: AuditFilter, caller: Caller) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield ("\ufeff" + buffer.getvalue()).encode()
    after: int | None = None
    while True:
        page = list_entries(workspace, selection, caller=caller, limit=MAX_LIMIT, after=after)
        buffer.seek(0)
        buffer.truncate()
        for item in page["items"]:
            cells = [item[c] if c != "details" else json.dumps(item[c]) for c in CSV_COLUMNS]
            writer.writerow([_csv_safe(c) for c in cells])
        yield buffer.getvalue().encode()
        if page["next"] is None:
            return
        after = int(page["next"])


def _query(selection: AuditFilter, after: int | None) -> Select[Any]:
    query = (
        select(security_audit, user.c.login.label("actor_login"))
        .select_from(security_audit.outerjoin(user, user.c.id == security_audit.c.actor_id))
        .order_by(security_audit.c.id.desc())
    )
    if selection.action:
        query = query.where(security_audit.c.action == selection.action)
    if selection.actor_id is not None:
        query = query.where(security_audit.c.actor_id == selection.actor_id)
    if selection.since is not None:
        query = query.where(security_audit.c.at >= selection.since)
    if selection.until is not None:
        query = query.where(security_audit.c.at < selection.until)
    if after is not None:
        query = query.where(security_audit.c.id < after)
    return query


def _entry(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "at": row["at"].isoformat(),
        "actor_id": row["actor_id"],
        "actor_login": row["actor_login"],
        "action": row["action"],
        "target": row["target"],
        "details": row["details"],
        "ip": row["ip"],
    }


def _csv_safe(value: Any) -> Any:
    """Keep spreadsheets from running a cell as a formula (CSV injection)."""
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@")):
        return "'" + value
    return "" if value is None else value

"""In-app notifications: the platform's notification hook (email and bots come with automation).

A notification is a row of the environment's ``fl_notification`` table written
in the transaction of what caused it (a new task, a reminder, a copy, an
outcome), so it exists exactly when its cause committed. A ``dedupe_key``
makes writing idempotent: jobs and timers pass one, and a rerun adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from formloom.engine.errors import Issue
from formloom.platform.database import Workspace
from formloom.platform.environments import require_environment_in
from formloom.platform.errors import Forbidden, Invalid
from formloom.platform.principal import Principal
from formloom.platform.record_errors import say
from formloom.platform.tables import notification

MAX_LIMIT = 200


def notify(
    conn: Connection,
    user_ids: Iterable[int],
    *,
    kind: str,
    message: dict[str, str],
    at: datetime,
    instance_id: int | None = None,
    task_id: int | None = None,
    dedupe_key: str | None = None,
) -> int:
    """Write a notification for each user (``message``: ``{"zh": …, "en": …}``); how many.

    With ``dedupe_key``, each user's row is keyed ``<dedupe_key>:<user>``: a row that
    exists already is not written again.
    """
    rows = [
        {
            "user_id": user_id,
            "kind": kind,
            "instance_id": instance_id,
            "task_id": task_id,
            "message": message,
            "created_at": at,
            "dedupe_key": None if dedupe_key is None else f"{dedupe_key}:{user_id}"[:200],
        }
        for user_id in dict.fromkeys(user_ids)
    ]
    if not rows:
        return 0
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(notification)
    if dedupe_key is not None:
        statement = statement.on_conflict_do_nothing(index_elements=[notification.c.dedupe_key])
    written = 0
    for row in rows:
        written += conn.execute(statement.values(row)).rowcount
    return written


def list_notifications(
    workspace: Workspace,
    *,
    env: str,
    principal: Principal,
    unread: bool = False,
    limit: int = 50,
    after: int | None = None,
    lang: str = "en",
) -> dict[str, Any]:
    """The caller's notifications, newest first: ``{items, next}`` (``next``: pass as ``after``)."""
    user_id = _user(principal, env, lang)
    if not 1 <= limit <= MAX_LIMIT:
        message = f"limit must be between 1 and {MAX_LIMIT}, got {limit}"
        raise Invalid(message, issues=[Issue("/limit", "invalid_limit", message)])
    query = select(notification).where(notification.c.user_id == user_id)
    if unread:
        query = query.where(notification.c.read_at.is_(None))
    if after is not None:
        query = query.where(notification.c.id < after)
    with workspace.begin(env, readonly=True) as conn:
        require_environment_in(conn, env)
        rows = conn.execute(query.order_by(notification.c.id.desc()).limit(limit + 1)).all()
    items = [
        {
            "id": r.id,
            "kind": r.kind,
            "instance_id": r.instance_id,
            "task_id": r.task_id,
            "message": r.message.get(lang) or r.message.get("en", ""),
            "created_at": r.created_at.isoformat(),
            "read_at": r.read_at.isoformat() if r.read_at else None,
        }
        for r in rows[:limit]
    ]
    return {"items": items, "next": items[-1]["id"] if len(rows) > limit else None}


def mark_read(
    workspace: Workspace, *, env: str, principal: Principal, ids: list[int], at: datetime
) -> int:
    """Mark the caller's notifications ``ids`` read; how many changed."""
    user_id = _user(principal, env, "en")
    with workspace.begin(env) as conn:
        require_environment_in(conn, env)
        changed = conn.execute(
            update(notification)
            .where(
                notification.c.user_id == user_id,
                notification.c.id.in_(ids),
                notification.c.read_at.is_(None),
            )
            .values(read_at=at)
        ).rowcount
    return int(changed)


def _user(principal: Principal, env: str, lang: str) -> int:
    if principal.user_id is None or not principal.may_enter(env):
        raise Forbidden(
            say(
                lang,
                f"notifications belong to users; this credential cannot read those of `{env}`",
                f"通知属于用户；此凭据无法读取环境 `{env}` 的通知",
            )
        )
    return principal.user_id

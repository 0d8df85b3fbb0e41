"""Giving records to another owner (single and bulk), checked and audited.

A transfer is an update of ``owner_id`` only: the actor needs the ``update``
permission on every record named (within their scope) and may only give
records to owners inside that scope (``team`` scope: a member of their teams;
``all``: any active user). The new owner must be an active user. Every record
gets its own ``transfer`` audit entry; the whole request is one transaction,
all or nothing, with every refused record reported as an issue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from formloom.engine.errors import Issue
from formloom.platform.access import active_user_ids
from formloom.platform.audit import AuditEvent
from formloom.platform.errors import Invalid, PlatformError
from formloom.platform.record_errors import say
from formloom.platform.record_writer import RecordWriter

MAX_TRANSFER = 1000


def transfer_owner(
    writer: RecordWriter,
    entity_name: str,
    record_ids: Sequence[Any],
    owner_id: Any,
    *,
    version: int | None = None,
) -> list[dict[str, Any]]:
    """Give the records ``record_ids`` to ``owner_id``; returns them as they are now."""
    lang = writer.lang
    writer.access.require(entity_name, "update", lang=lang)
    entity = writer.entity(entity_name)
    issues = _request_issues(writer, record_ids, owner_id)
    if issues:
        raise Invalid(issues[0].message, issues=issues)
    if not active_user_ids(writer.conn, [owner_id]):
        message = say(
            lang,
            f"user {owner_id} does not exist or is deactivated; give the records to an active user",
            f"用户 {owner_id} 不存在或已停用；请转给在职的用户",
        )
        raise Invalid(message, issues=[Issue("/owner_id", "unknown_user", message)])
    issues += writer.owner_issues(entity, owner_id, at="")
    done: list[dict[str, Any]] = []
    events: list[AuditEvent] = []
    for i, record_id in enumerate(record_ids):
        at = f"/ids/{i}"
        try:
            before = writer.live_row(entity, record_id, at=at)
            writer.check_row(entity, before, "update", at=at)
            if version is not None and before["version"] != version:
                raise writer.stale(entity, before, version, at=at)
            if before["owner_id"] == owner_id:
                done.append(writer.json(entity, before))
                continue
            after = writer.write_update(
                entity, record_id, before["version"], {"owner_id": owner_id}, at=at
            )
        except PlatformError as exc:
            issues += exc.issues or [Issue(at, exc.code, exc.message)]
            continue
        done.append(writer.json(entity, after))
        change = {"owner_id": [before["owner_id"], owner_id]}
        events.append(AuditEvent(entity.name, record_id, "transfer", change))
    if issues:
        message = say(
            lang,
            f"{len(issues)} problem(s); no record was transferred: {issues[0].message}",
            f"共 {len(issues)} 个问题，未转移任何记录：{issues[0].message}",
        )
        raise Invalid(message, issues=issues)
    writer.audit(events)
    return [writer.access.visible(entity_name, record) for record in done]


def _request_issues(writer: RecordWriter, record_ids: Sequence[Any], owner_id: Any) -> list[Issue]:
    issues = []
    if not record_ids or len(record_ids) > MAX_TRANSFER:
        message = say(
            writer.lang,
            f"name 1 to {MAX_TRANSFER} records in `ids`",
            f"请在 `ids` 中列出 1 到 {MAX_TRANSFER} 条记录",
        )
        issues.append(Issue("/ids", "invalid_ids", message))
    for i, record_id in enumerate(record_ids):
        if isinstance(record_id, bool) or not isinstance(record_id, int) or record_id < 1:
            message = say(writer.lang, "expected a record id", "应为记录编号")
            issues.append(Issue(f"/ids/{i}", "type", message))
    if isinstance(owner_id, bool) or not isinstance(owner_id, int) or owner_id < 1:
        message = say(writer.lang, "expected a user id", "应为用户编号")
        issues.append(Issue("/owner_id", "type", message))
    return issues

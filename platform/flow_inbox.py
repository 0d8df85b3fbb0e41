"""Reading approvals: the inbox, an instance with its timeline, a record's approvals.

- :func:`inbox`: the caller's ``pending`` tasks (to approve, handle or resubmit),
  instances they ``submitted``, copies (``cc``) and tasks they acted on (``done``),
  newest first, a page at a time (``next`` → ``after``).
- :func:`instance_detail`: one instance: status, current steps and their people,
  every task, and the timeline (who, what, when, comment, attachments; automatic
  decisions with their reason). Participants, admins and whoever may read the
  record may look.
- :func:`task_detail`: one task with its instance's summary.
  Both show the record as the current step lets the caller see it
  (:func:`~formloom.platform.flow_view.record_snapshot`).
- :func:`record_approvals`: the approval status of a record and its instances.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Connection, Row, select

from formloom.engine.errors import Issue
from formloom.platform.access import load_access
from formloom.platform.database import Workspace
from formloom.platform.errors import Invalid
from formloom.platform.flow_definitions import flow_document
from formloom.platform.flow_errors import NotAllowed, not_found, status_zh
from formloom.platform.flow_policies import REASONS
from formloom.platform.flow_runtime import approval_transaction, is_participant
from formloom.platform.flow_state import ACTED, CC, OPEN, PENDING, RUNNING, SENT, read_instance
from formloom.platform.flow_view import record_snapshot
from formloom.platform.principal import Principal
from formloom.platform.record_context import WriteContext
from formloom.platform.record_errors import say
from formloom.platform.tables import approval_event, approval_instance, approval_task

Box = Literal["pending", "submitted", "cc", "done"]
BOXES: tuple[Box, ...] = ("pending", "submitted", "cc", "done")
MAX_LIMIT = 200


def inbox(
    workspace: Workspace,
    *,
    env: str,
    principal: Principal,
    box: str,
    limit: int = 50,
    after: int | None = None,
    lang: str = "en",
) -> dict[str, Any]:
    """A page of the caller's ``box``: ``{items, next}``."""
    if box not in BOXES:
        message = f"unknown box `{box}`; use one of {', '.join(BOXES)}"
        raise Invalid(message, issues=[Issue("/box", "invalid_box", message)])
    if not 1 <= limit <= MAX_LIMIT:
        message = f"limit must be between 1 and {MAX_LIMIT}, got {limit}"
        raise Invalid(message, issues=[Issue("/limit", "invalid_limit", message)])
    with approval_transaction(workspace, env, principal, lang, readonly=True) as conn:
        if box == "submitted":
            table = approval_instance
            query = select(table).where(table.c.submitter_id == principal.user_id)
            if after is not None:
                query = query.where(table.c.id < after)
            rows = conn.execute(query.order_by(table.c.id.desc()).limit(limit + 1)).all()
            items = [_summary(conn, workspace, env, r, lang) for r in rows[:limit]]
        else:
            task = approval_task
            statuses = {"pending": (PENDING,), "cc": (SENT,), "done": ACTED}[box]
            query = select(task).where(
                task.c.assignee_id == principal.user_id, task.c.status.in_(statuses)
            )
            if box == "cc":
                query = query.where(task.c.kind == CC)
            elif box == "done":  # not what the platform decided for them (timeouts, policies)
                query = query.where(task.c.decided_by == principal.user_id)
            if after is not None:
                query = query.where(task.c.id < after)
            rows = conn.execute(query.order_by(task.c.id.desc()).limit(limit + 1)).all()
            instances = _instances(conn, {r.instance_id for r in rows[:limit]})
            items = [
                {
                    **_task_json(conn, workspace, env, instances[r.instance_id], r, lang),
                    "instance": _summary(conn, workspace, env, instances[r.instance_id], lang),
                }
                for r in rows[:limit]
            ]
    return {"items": items, "next": items[-1]["id"] if len(rows) > limit else None}


def instance_detail(
    workspace: Workspace, *, env: str, instance_id: int, principal: Principal, lang: str = "en"
) -> dict[str, Any]:
    """An instance with its tasks and timeline (participants, admins and record readers)."""
    with approval_transaction(workspace, env, principal, lang, readonly=True) as conn:
        instance = read_instance(conn, instance_id)
        if instance is None:
            raise not_found(lang, env, "instance", instance_id)
        _require_view(conn, workspace, env, instance, principal, lang)
        view = instance_view(conn, workspace, env, instance, lang)
        view["record"] = record_snapshot(conn, workspace, env, instance, principal, lang)
        return view


def task_detail(
    workspace: Workspace, *, env: str, task_id: int, principal: Principal, lang: str = "en"
) -> dict[str, Any]:
    """A task with its instance's summary and the record as the task's step shows it to the
    caller (the assignee; otherwise whoever may see the instance)."""
    with approval_transaction(workspace, env, principal, lang, readonly=True) as conn:
        task = conn.execute(select(approval_task).where(approval_task.c.id == task_id)).first()
        if task is None:
            raise not_found(lang, env, "task", task_id)
        instance = read_instance(conn, task.instance_id)
        assert instance is not None
        if task.assignee_id != principal.user_id:
            _require_view(conn, workspace, env, instance, principal, lang)
        return {
            **_task_json(conn, workspace, env, instance, task, lang),
            "instance": _summary(conn, workspace, env, instance, lang),
            "record": record_snapshot(conn, workspace, env, instance, principal, lang),
        }


def record_approvals(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    record_id: int,
    principal: Principal,
    lang: str = "en",
) -> dict[str, Any]:
    """The record's approval status (its latest instance's; None if never submitted) and
    its instances, newest first. The caller must be able to read the record."""
    with approval_transaction(workspace, env, principal, lang, readonly=True) as conn:
        reader = _reader(conn, workspace, env, principal, lang)
        runtime = reader.entity(entity)
        row = reader.existing_row(runtime, record_id, at="")
        reader.check_row(runtime, row, "read", at="")
        table = approval_instance
        rows = conn.execute(
            select(table)
            .where(table.c.entity == entity, table.c.record_id == record_id)
            .order_by(table.c.id.desc())
        ).all()
        views = [instance_view(conn, workspace, env, r, lang) for r in rows]
    return {
        "entity": entity,
        "record_id": record_id,
        "status": views[0]["status"] if views else None,
        "locked": bool(views) and views[0]["status"] == RUNNING,
        "instances": views,
    }


def instance_view(
    conn: Connection, workspace: Workspace, env: str, instance: Row[Any], lang: str
) -> dict[str, Any]:
    """An instance as the API shows it."""
    tasks = conn.execute(
        select(approval_task)
        .where(approval_task.c.instance_id == instance.id)
        .order_by(approval_task.c.id)
    ).all()
    events = conn.execute(
        select(approval_event)
        .where(approval_event.c.instance_id == instance.id)
        .order_by(approval_event.c.id)
    ).all()
    task_views = [_task_json(conn, workspace, env, instance, t, lang) for t in tasks]
    current: dict[str, dict[str, Any]] = {}
    for view in task_views:
        if view["status"] in OPEN and view["kind"] != CC:
            step = current.setdefault(
                view["node_id"],
                {"node_id": view["node_id"], "label": view["node_label"], "tasks": []},
            )
            step["tasks"].append(view)
    for step in current.values():
        step["tasks"].sort(key=lambda t: (t["slot"], t["seq"], t["id"]))
    return {
        **_summary(conn, workspace, env, instance, lang),
        "round": instance.round,
        "rev": instance.rev,
        "current": list(current.values()),
        "tasks": task_views,
        "timeline": [_event_json(e, lang) for e in events],
    }


def _summary(
    conn: Connection, workspace: Workspace, env: str, instance: Row[Any], lang: str
) -> dict[str, Any]:
    document = flow_document(
        conn,
        cache_key=workspace.cache_key,
        env=env,
        name=instance.flow,
        version=instance.flow_version,
    )
    return {
        "id": instance.id,
        "flow": instance.flow,
        "flow_version": instance.flow_version,
        "flow_label": document.label.zh if lang == "zh" else document.label.en,
        "entity": instance.entity,
        "record_id": instance.record_id,
        "submitter_id": instance.submitter_id,
        "status": instance.status,
        "status_label": status_zh(instance.status) if lang == "zh" else instance.status,
        "created_at": instance.created_at.isoformat(),
        "finished_at": instance.finished_at.isoformat() if instance.finished_at else None,
    }


def _task_json(
    conn: Connection, workspace: Workspace, env: str, instance: Row[Any], task: Row[Any], lang: str
) -> dict[str, Any]:
    document = flow_document(
        conn,
        cache_key=workspace.cache_key,
        env=env,
        name=instance.flow,
        version=instance.flow_version,
    )
    node = document.node(task.node_id)
    label = None if node is None else (node.label.zh if lang == "zh" else node.label.en)
    return {
        "id": task.id,
        "instance_id": task.instance_id,
        "node_id": task.node_id,
        "node_label": label,
        "kind": task.kind,
        "assignee_id": task.assignee_id,
        "status": task.status,
        "slot": task.slot,
        "seq": task.seq,
        "added": task.added,
        "origin_task_id": task.origin_task_id,
        "auto": task.auto,
        "comment": task.comment,
        "decided_by": task.decided_by,
        "decided_at": task.decided_at.isoformat() if task.decided_at else None,
        "activated_at": task.activated_at.isoformat() if task.activated_at else None,
        "rev": task.rev,
        "created_at": task.created_at.isoformat(),
    }


def _event_json(event: Row[Any], lang: str) -> dict[str, Any]:
    reason = event.details.get("reason")
    texts = REASONS.get(reason) if isinstance(reason, str) else None
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "actor_id": event.actor_id,
        "automatic": event.actor_id is None,
        "action": event.action,
        "node_id": event.node_id,
        "task_id": event.task_id,
        "comment": event.comment,
        "attachments": event.attachments,
        "details": event.details,
        "reason": None if texts is None else (texts[1] if lang == "zh" else texts[0]),
    }


def _instances(conn: Connection, ids: set[int]) -> dict[int, Row[Any]]:
    if not ids:
        return {}
    rows = conn.execute(select(approval_instance).where(approval_instance.c.id.in_(ids)))
    return {r.id: r for r in rows}


def _reader(
    conn: Connection, workspace: Workspace, env: str, principal: Principal, lang: str
) -> WriteContext:
    access = load_access(conn, cache_key=workspace.cache_key, env=env, principal=principal)
    return WriteContext(
        conn,
        cache_key=workspace.cache_key,
        env=env,
        actor_id=principal.user_id,
        lang=lang,
        access=access,
    )


def _require_view(
    conn: Connection,
    workspace: Workspace,
    env: str,
    instance: Row[Any],
    principal: Principal,
    lang: str,
) -> None:
    if principal.admin or is_participant(conn, instance, principal.user_id):
        return
    reader = _reader(conn, workspace, env, principal, lang)
    document = flow_document(
        conn,
        cache_key=workspace.cache_key,
        env=env,
        name=instance.flow,
        version=instance.flow_version,
    )
    if document.admin is not None and document.admin == principal.user_id:
        return
    if reader.access.may(instance.entity, "read"):
        runtime = reader.entity(instance.entity)
        row = reader.row(runtime, instance.record_id)
        if row is not None and reader.access.allows_row(instance.entity, "read", row):
            return
    raise NotAllowed(
        say(
            lang,
            f"approval instance {instance.id} is not yours to see: you take no part in it and "
            f"cannot read `{instance.entity}` {instance.record_id}",
            f"您无权查看审批实例 {instance.id}：您未参与该审批，也无权查看 "
            f"`{instance.entity}` 记录 {instance.record_id}",
        )
    )

"""Record locking while in approval: a record with a running instance changes only through it.

The records writer calls :func:`refuse_locked_change` before every conditional
UPDATE of a record (updates, deletes, owner transfers, imports). With no
running instance that is one lookup on the partial unique index
``uq_fl_approval_instance_running``. With one, the change is refused (423)
unless the actor holds an open task whose step makes every changed field
`editable` (``field_permissions``), or it is the submitter editing the record
after it was returned to them. Computed fields follow the fields they derive
from. The flow's own changes (``set_fields`` actions) go through
:class:`~formloom.platform.flow_actions.FlowWriter`, which is not refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

from sqlalchemy import Connection, Row, select

from formloom.engine.errors import Issue
from formloom.engine.fields.relations import ChildTableOptions
from formloom.engine.fields.types import LookupOptions
from formloom.platform.entity_runtime import RuntimeEntity
from formloom.platform.flow_definitions import flow_document
from formloom.platform.flow_errors import RecordLocked
from formloom.platform.flow_state import APPROVE, HANDLE, PENDING, RESUBMIT, RUNNING
from formloom.platform.record_context import WriteContext
from formloom.platform.save_pipeline import rules_computed
from formloom.platform.tables import approval_instance, approval_task

#: Every field (the submitter editing a returned record).
EVERY_FIELD = None


def running_instance(conn: Connection, entity: str, record_id: int) -> Row[Any] | None:
    """The record's running instance, if any (the partial unique index answers)."""
    table = approval_instance
    return conn.execute(
        select(table).where(
            table.c.entity == entity,
            table.c.record_id == record_id,
            table.c.status == RUNNING,
        )
    ).first()


def refuse_locked_change(
    writer: WriteContext,
    entity: RuntimeEntity,
    record_id: int | None,
    fields: Set[str],
    *,
    at: str,
    values: Mapping[str, Any] | None = None,
) -> None:
    """Raise :class:`RecordLocked` if the record is in approval and the writer's actor may not
    change ``fields`` now (``deleted_at`` among them: a delete, never allowed), or if it is a
    row of a child table whose parent is in approval (``record_id`` None: a new record with
    ``values``)."""
    refuse_locked_child(writer, entity, record_id, values or {}, at=at)
    if record_id is None:
        return
    running = running_instance(writer.conn, entity.name, record_id)
    if running is None:
        return
    deleting = "deleted_at" in fields
    wanted = set(fields) - rules_computed(writer, entity) - {"deleted_at"}
    editable: frozenset[str] | None = frozenset()
    if writer.actor_id is not None:
        editable = editable_fields(writer, running, writer.actor_id)
    if not deleting and (editable is EVERY_FIELD or wanted <= editable):
        return
    raise _locked(writer, entity.name, record_id, running, deleting, wanted, editable, at)


def child_tables_of(
    writer: WriteContext, entity: RuntimeEntity
) -> list[tuple[RuntimeEntity, str, str]]:
    """The child tables ``entity``'s records are rows of: (parent entity, child_table
    field, the child's lookup to the parent)."""
    found = []
    for link, compiled in entity.compiled.fields.items():
        options = compiled.options
        if not isinstance(options, LookupOptions):
            continue
        parent = writer.entity(options.entity)
        for name, parent_field in parent.compiled.fields.items():
            table = parent_field.options
            if (
                isinstance(table, ChildTableOptions)
                and table.entity == entity.name
                and table.field == link
            ):
                found.append((parent, name, link))
    return found


def refuse_locked_child(
    writer: WriteContext,
    entity: RuntimeEntity,
    record_id: int | None,
    values: Mapping[str, Any],
    *,
    at: str,
) -> None:
    """Raise :class:`RecordLocked` if the record (or new record with ``values``) is a row of
    a child table whose parent, before or after the change, is in approval and the actor's
    open task does not make that child table editable."""
    tables = child_tables_of(writer, entity)
    if not tables:
        return
    current: dict[str, Any] = {}
    if record_id is not None:
        table = entity.table
        found = writer.conn.execute(select(table).where(table.c.id == record_id)).first()
        current = dict(found._mapping) if found is not None else {}
    for parent, name, link in tables:
        parent_ids = {int(v) for v in (current.get(link), values.get(link)) if v is not None}
        for parent_id in sorted(parent_ids):
            running = running_instance(writer.conn, parent.name, parent_id)
            if running is None:
                continue
            editable: frozenset[str] | None = frozenset()
            if writer.actor_id is not None:
                editable = editable_fields(writer, running, writer.actor_id)
            if editable is EVERY_FIELD or name in editable:
                continue
            raise _child_locked(writer, parent.name, parent_id, name, running, editable, at)


def editable_fields(writer: WriteContext, running: Row[Any], user_id: int) -> frozenset[str] | None:
    """The fields ``user_id`` may change now (None: every field)."""
    rows = writer.conn.execute(
        select(approval_task.c.node_id, approval_task.c.kind).where(
            approval_task.c.instance_id == running.id,
            approval_task.c.assignee_id == user_id,
            approval_task.c.status == PENDING,
        )
    ).all()
    if not rows:
        return frozenset()
    if any(r.kind == RESUBMIT for r in rows):
        return EVERY_FIELD
    document = flow_document(
        writer.conn,
        cache_key=writer.cache_key,
        env=writer.env,
        name=running.flow,
        version=running.flow_version,
    )
    found: set[str] = set()
    for row in rows:
        node = document.node(row.node_id)
        if row.kind in (APPROVE, HANDLE) and node is not None:
            permissions: dict[str, str] = getattr(node, "field_permissions", {})
            found |= {name for name, mode in permissions.items() if mode == "editable"}
    return frozenset(found)


def _locked(
    writer: WriteContext,
    entity: str,
    record_id: int,
    running: Row[Any],
    deleting: bool,
    wanted: set[str],
    editable: frozenset[str] | None,
    at: str,
) -> RecordLocked:
    withdraw = f"POST /api/envs/{writer.env}/approvals/instances/{running.id}/withdraw"
    where = (
        f"`{entity}` {record_id} is in approval (instance {running.id} of flow `{running.flow}`)"
    )
    where_zh = (
        f"`{entity}` 记录 {record_id} 正在审批中（流程 `{running.flow}` 的实例 {running.id}）"
    )
    if deleting:
        message = writer.say(
            f"{where}: it cannot be deleted until the approval ends; the submitter can withdraw "
            f"it ({withdraw}) or an administrator can terminate it",
            f"{where_zh}：审批结束前不能删除；可由发起人撤回（{withdraw}）或由管理员终止",
        )
    else:
        allowed = ", ".join(f"`{f}`" for f in sorted(editable or ())) or "none"
        refused = ", ".join(f"`{f}`" for f in sorted(wanted - set(editable or ())))
        message = writer.say(
            f"{where}: it changes only through the flow; you may not change {refused} now "
            f"(fields editable for you at this step: {allowed}); withdraw it ({withdraw}) or "
            "wait for the outcome",
            f"{where_zh}：审批期间只能通过流程修改；您当前不能修改 {refused}"
            f"（您在此步骤可编辑的字段：{'无' if allowed == 'none' else allowed}）；"
            f"请撤回（{withdraw}）或等待审批结果",
        )
    error = RecordLocked(message, issues=[Issue(at, RecordLocked.code, message)])
    return error


def _child_locked(
    writer: WriteContext,
    parent: str,
    parent_id: int,
    name: str,
    running: Row[Any],
    editable: frozenset[str] | None,
    at: str,
) -> RecordLocked:
    withdraw = f"POST /api/envs/{writer.env}/approvals/instances/{running.id}/withdraw"
    allowed = ", ".join(f"`{f}`" for f in sorted(editable or ())) or "none"
    message = writer.say(
        f"`{parent}` {parent_id} is in approval (instance {running.id} of flow "
        f"`{running.flow}`): the rows of its child table `{name}` change only through the "
        f"flow, so they cannot be added, changed or deleted now (fields editable for you at "
        f"this step: {allowed}); withdraw it ({withdraw}) or wait for the outcome",
        f"`{parent}` 记录 {parent_id} 正在审批中（流程 `{running.flow}` 的实例 {running.id}）："
        f"其子表 `{name}` 的行只能通过流程修改，当前不能新增、修改或删除"
        f"（您在此步骤可编辑的字段：{'无' if allowed == 'none' else allowed}）；"
        f"请撤回（{withdraw}）或等待审批结果",
    )
    return RecordLocked(message, issues=[Issue(at, RecordLocked.code, message)])

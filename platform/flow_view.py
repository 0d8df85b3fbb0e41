"""What an approver sees: the record of an instance as its current step allows it.

:func:`record_snapshot` is the ``record`` of an instance view and a task view:
``{"via", "node_ids", "values", "fields"}`` or None. The viewer sees it

- through their role (``via: "role"``) when their roles let them read the row;
- through the approval (``via: "approval"``) when they take part in the
  instance (the submitter, an assignee of any of its tasks, a CC recipient),
  even without a read scope on the record: being asked to approve grants sight
  of what is approved (as in DingTalk and Feishu);
- not at all (None) otherwise (a flow admin without read access sees the
  instance, not the record).

The step whose ``field_permissions`` apply: the nodes of the viewer's open
tasks; else the instance's current steps; else (a finished instance) the nodes
where the viewer had tasks; else none. A field hidden at one of them, or hidden
by the viewer's roles, is left out of ``values`` (child table rows leave out the
child entity's hidden fields too). Every other field of the entity is marked in
``fields``: ``editable`` when the viewer's own open task makes it editable (or
the record was returned to them to resubmit), their roles do not make it read
only and may update the row; ``read_only`` otherwise. That is what the record
lock (:mod:`formloom.platform.flow_locks`) lets them change.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select

from formloom.engine.fields.relations import ChildTableOptions
from formloom.platform.access import load_access
from formloom.platform.database import Workspace
from formloom.platform.flow_definitions import flow_document
from formloom.platform.flow_locks import running_instance
from formloom.platform.flow_runtime import is_participant
from formloom.platform.flow_state import APPROVE, CC, HANDLE, OPEN, PENDING, RESUBMIT
from formloom.platform.principal import Principal
from formloom.platform.record_children import with_children
from formloom.platform.record_context import WriteContext
from formloom.platform.record_links import with_links
from formloom.platform.save_pipeline import rules_computed
from formloom.platform.tables import approval_task

EDITABLE = "editable"
READ_ONLY = "read_only"
HIDDEN = "hidden"


def record_snapshot(
    conn: Connection,
    workspace: Workspace,
    env: str,
    instance: Row[Any],
    principal: Principal,
    lang: str,
) -> dict[str, Any] | None:
    """The instance's record as ``principal`` may see it now (see the module docstring)."""
    access = load_access(conn, cache_key=workspace.cache_key, env=env, principal=principal)
    ctx = WriteContext(
        conn,
        cache_key=workspace.cache_key,
        env=env,
        actor_id=principal.user_id,
        lang=lang,
        access=access,
    )
    entity = ctx.entity(instance.entity)
    row = ctx.row(entity, instance.record_id)
    if row is None:
        return None
    by_role = access.may(entity.name, "read") and access.allows_row(entity.name, "read", row)
    if not by_role and not is_participant(conn, instance, principal.user_id):
        return None
    permissions, node_ids, editable = _node_modes(ctx, instance, principal.user_id)
    hidden = set(access.hidden(entity.name))
    hidden |= {name for name, mode in permissions.items() if mode == HIDDEN}
    may_update = access.may(entity.name, "update") and access.allows_row(entity.name, "update", row)
    computed = rules_computed(ctx, entity)
    fields: dict[str, str] = {}
    for name in entity.compiled.fields:
        if name in hidden:
            continue
        writable = may_update and name not in access.read_only(entity.name)
        writable = writable and name not in computed
        writable = writable and (editable is None or name in editable)
        fields[name] = EDITABLE if writable else READ_ONLY
    record = ctx.json(entity, row)
    record = with_links(ctx, entity, with_children(ctx, entity, record))
    values = {k: v for k, v in record.items() if k not in hidden}
    for name, compiled in entity.compiled.fields.items():
        options = compiled.options
        if name in values and isinstance(options, ChildTableOptions):
            values[name] = [access.visible(options.entity, r) for r in values[name] or []]
    return {
        "via": "role" if by_role else "approval",
        "node_ids": node_ids,
        "values": values,
        "fields": fields,
    }


def _node_modes(
    ctx: WriteContext, instance: Row[Any], user_id: int | None
) -> tuple[dict[str, str], list[str], frozenset[str] | None]:
    """The field modes of the nodes that apply (a field hidden at one is hidden), those
    nodes, and the fields the viewer's own open tasks make editable (None: every field)."""
    tasks = ctx.conn.execute(
        select(
            approval_task.c.node_id,
            approval_task.c.kind,
            approval_task.c.status,
            approval_task.c.assignee_id,
        ).where(approval_task.c.instance_id == instance.id)
    ).all()
    mine_open = [
        t for t in tasks if t.assignee_id == user_id and t.status == PENDING and t.kind != CC
    ]
    current = [t for t in tasks if t.status in OPEN and t.kind != CC]
    mine = [t for t in tasks if t.assignee_id == user_id and t.kind != CC]
    chosen = mine_open or current or mine
    node_ids = sorted({t.node_id for t in chosen if t.kind in (APPROVE, HANDLE)})
    document = flow_document(
        ctx.conn,
        cache_key=ctx.cache_key,
        env=ctx.env,
        name=instance.flow,
        version=instance.flow_version,
    )
    modes: dict[str, str] = {}
    for node_id in node_ids:
        node = document.node(node_id)
        permissions: dict[str, str] = getattr(node, "field_permissions", {}) or {}
        for name, mode in permissions.items():
            modes[name] = _stricter(mode, modes.get(name, EDITABLE))
    editable: frozenset[str] | None = frozenset()
    if any(t.kind == RESUBMIT for t in mine_open):
        editable = None
    else:
        found: set[str] = set()
        for task in mine_open:
            node = document.node(task.node_id)
            if task.kind in (APPROVE, HANDLE) and node is not None:
                permissions = getattr(node, "field_permissions", {}) or {}
                found |= {n for n, m in permissions.items() if m == EDITABLE}
        editable = frozenset(found)
    return modes, node_ids, editable


def _stricter(a: str, b: str) -> str:
    order = {HIDDEN: 0, READ_ONLY: 1, EDITABLE: 2}
    return a if order.get(a, 1) < order.get(b, 1) else b


def approval_field_modes(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    record_id: int,
    principal: Principal,
    lang: str = "en",
) -> dict[str, str] | None:
    """The field modes a record in approval has for ``principal`` now, for an edit form of
    it: ``editable`` only what the lock lets them change, ``read_only`` the rest they see
    (see :func:`record_snapshot`); a field not named is hidden from them. None when no
    approval is running."""
    with workspace.begin(env, readonly=True) as conn:
        running = running_instance(conn, entity, record_id)
        if running is None:
            return None
        snapshot = record_snapshot(conn, workspace, env, running, principal, lang)
    shown: dict[str, str] = snapshot["fields"] if snapshot is not None else {}
    return shown

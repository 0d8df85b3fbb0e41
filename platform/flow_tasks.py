"""Actions on a task: approve, reject, complete, return, transfer, add approver, resubmit,
and the admins' reassign.

Each is one transaction: read the task, lock its instance
(:func:`~formloom.platform.flow_runtime.open_step`), then the conditional update
of the task (``WHERE id = ? AND rev = ? AND status = 'pending'``); the loser of a
race gets :class:`~formloom.platform.flow_errors.TaskAlreadyDecided` (409). Only
the assignee acts on a task (403 otherwise); ``rev`` (optional) is the revision
the caller saw, so a task changed since is not acted on blindly.

- ``approve`` / ``reject`` (approver steps; a reject may need a comment);
  ``next_approvers`` chooses the people of the next step when it is assigned by
  the previous approver (上一节点审批人指定);
- ``complete`` (handler steps, 办理);
- ``return`` (退回) ``to`` an earlier step the instance passed through, or to the
  submitter (the start node, the default), who edits the record and resubmits;
- ``transfer`` (转交) to ``user``; ``reassign``: the same by an admin;
- ``add_approver`` (加签) ``users`` ``before`` (they approve first, then the
  assignee again), ``after`` (after the assignee) or ``alongside`` (at once);
- ``resubmit``: the submitter's task after a return.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Row, func, select, update

from formloom.engine.errors import Issue
from formloom.engine.flows import return_targets
from formloom.engine.flows.model import ApproverNode
from formloom.platform.database import Workspace
from formloom.platform.errors import Invalid
from formloom.platform.flow_approvers import Organisation
from formloom.platform.flow_choices import checked_choices
from formloom.platform.flow_errors import NotAssignee, not_found, task_closed
from formloom.platform.flow_inbox import instance_view
from formloom.platform.flow_runtime import (
    approval_transaction,
    checked_attachments,
    open_step,
    require_admin,
    require_comment,
)
from formloom.platform.flow_state import (
    APPROVE,
    APPROVED,
    COMPLETED,
    HANDLE,
    LIVE,
    PENDING,
    REJECTED,
    RESUBMIT,
    RETURNED,
    TRANSFERRED,
    WAITING,
    read_instance,
    read_task,
)
from formloom.platform.flow_step import Step
from formloom.platform.principal import Principal
from formloom.platform.record_errors import say
from formloom.platform.tables import approval_task, approval_token

TaskActionName = Literal[
    "approve", "reject", "complete", "return", "transfer", "add_approver", "resubmit", "reassign"
]
MAX_ADDED = 10


class TaskAction(BaseModel):
    """What an action on a task carries (each action reads the parts it needs)."""

    model_config = ConfigDict(extra="forbid")

    comment: str | None = Field(default=None, max_length=2000)
    attachments: list[str] = Field(default_factory=list, description="Uploaded file ids")
    rev: int | None = Field(default=None, description="The task revision you acted on")
    to: str | None = Field(default=None, description="`return`: the step to return to")
    user: int | None = Field(default=None, description="`transfer`, `reassign`: the new assignee")
    users: list[int] = Field(default_factory=list, description="`add_approver`: who is added")
    position: Literal["before", "after", "alongside"] | None = Field(
        default=None, description="`add_approver`: before, after or alongside the assignee"
    )
    next_approvers: dict[str, list[int]] = Field(
        default_factory=dict, description="`approve`: people of steps the approver chooses"
    )
    approvers: dict[str, list[int]] = Field(
        default_factory=dict, description="`resubmit`: the submitter's choices again"
    )


def act_on_task(
    workspace: Workspace,
    *,
    env: str,
    task_id: int,
    action: str,
    request: TaskAction,
    principal: Principal,
    lang: str = "en",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Carry out ``action`` on task ``task_id``; the instance afterwards."""
    handler = _HANDLERS.get(action)
    if handler is None:
        message = f"unknown task action `{action}`; use one of {', '.join(_HANDLERS)}"
        raise Invalid(message, issues=[Issue("/action", "unknown_action", message)])
    now = now or datetime.now(UTC)
    with approval_transaction(workspace, env, principal, lang) as conn:
        seen = read_task(conn, task_id)
        if seen is None:
            raise not_found(lang, env, "task", task_id)
        rev = request.rev if request.rev is not None else seen.rev
        step = open_step(
            conn,
            workspace,
            env=env,
            instance_id=seen.instance_id,
            actor_id=principal.user_id,
            lang=lang,
            now=now,
        )
        task = read_task(conn, task_id)
        assert task is not None
        if action == "reassign":
            require_admin(principal, step, "reassign tasks", "转办任务")
        elif task.assignee_id != principal.user_id:
            raise NotAssignee(
                say(
                    lang,
                    f"task {task_id} is assigned to user {task.assignee_id}, not to you: only "
                    "its assignee may act on it (an administrator may reassign it)",
                    f"任务 {task_id} 分配给用户 {task.assignee_id}，不是您：只有处理人可以操作"
                    "（管理员可以转办）",
                )
            )
        if task.status != PENDING:
            raise task_closed(lang, task_id, task.status, task.decided_by)
        _check_kind(step, task, action)
        files = checked_attachments(conn, request.attachments, lang)
        handler(step, task, rev, request, files)
        instance = read_instance(conn, task.instance_id)
        assert instance is not None
        return instance_view(conn, workspace, env, instance, lang)


_KINDS = {
    "approve": (APPROVE,),
    "reject": (APPROVE,),
    "complete": (HANDLE,),
    "return": (APPROVE, HANDLE),
    "transfer": (APPROVE, HANDLE),
    "reassign": (APPROVE, HANDLE),
    "add_approver": (APPROVE, HANDLE),
    "resubmit": (RESUBMIT,),
}
_FIT = {APPROVE: "approve, reject", HANDLE: "complete", RESUBMIT: "resubmit"}


def _check_kind(step: Step, task: Row[Any], action: str) -> None:
    if task.kind in _KINDS[action]:
        return
    fits = _FIT.get(task.kind, "")
    message = say(
        step.lang,
        f"task {task.id} is a `{task.kind}` task: `{action}` does not apply; use {fits}",
        f"任务 {task.id} 是「{task.kind}」类任务，不能「{action}」；请使用 {fits}",
    )
    raise Invalid(message, issues=[Issue("/action", "action_not_applicable", message)])


def _approve(step: Step, task: Row[Any], rev: int, request: TaskAction, files: list[str]) -> None:
    if request.next_approvers:
        chosen = checked_choices(
            step.org,
            step.flow,
            request.next_approvers,
            kind="previous",
            at="/next_approvers",
            lang=step.lang,
        )
        step.choices["previous"].update(chosen)
        step.save_choices()
    step.choosing = "previous"
    step.mark_decided()
    step.event(
        "approve",
        task.node_id,
        task.id,
        by=step.actor_id,
        comment=request.comment,
        attachments=files,
    )
    step.decide(task, rev, APPROVED, by=step.actor_id, comment=request.comment)


def _reject(step: Step, task: Row[Any], rev: int, request: TaskAction, files: list[str]) -> None:
    node = step.person_node(task.node_id)
    comment = request.comment
    if isinstance(node, ApproverNode) and node.comment_required_on_reject:
        comment = require_comment(
            comment,
            step.lang,
            f"step `{node.id}` asks for a reason when rejecting",
            f"步骤 `{node.id}` 要求拒绝时填写理由",
        )
    step.mark_decided()
    step.event(
        "reject", task.node_id, task.id, by=step.actor_id, comment=comment, attachments=files
    )
    step.decide(task, rev, REJECTED, by=step.actor_id, comment=comment)


def _complete(step: Step, task: Row[Any], rev: int, request: TaskAction, files: list[str]) -> None:
    step.event(
        "complete",
        task.node_id,
        task.id,
        by=step.actor_id,
        comment=request.comment,
        attachments=files,
    )
    step.decide(task, rev, COMPLETED, by=step.actor_id, comment=request.comment)


def _return(step: Step, task: Row[Any], rev: int, request: TaskAction, files: list[str]) -> None:
    target = request.to or step.start_id
    passed = set(
        step.conn.execute(
            select(approval_token.c.node_id).where(approval_token.c.instance_id == step.instance_id)
        ).scalars()
    )
    allowed = [
        t for t in return_targets(step.flow, task.node_id) if t == step.start_id or t in passed
    ]
    if target not in allowed:
        listed = ", ".join(f"`{t}`" for t in allowed)
        message = say(
            step.lang,
            f"step `{task.node_id}` cannot return to `{target}`; "
            + (f"it may return to: {listed}" if allowed else "it allows no returns"),
            f"步骤 `{task.node_id}` 不能退回到 `{target}`；"
            + (f"可退回到：{listed}" if allowed else "该步骤不允许退回"),
        )
        raise Invalid(message, issues=[Issue("/to", "invalid_return", message)])
    step.close(
        task, rev, RETURNED, decided_by=step.actor_id, decided_at=step.now, comment=request.comment
    )
    step.mark_decided()
    step.event(
        "return",
        task.node_id,
        task.id,
        by=step.actor_id,
        comment=request.comment,
        attachments=files,
        details={"to": target},
    )
    step.proceed(step.return_to(target))


def _transfer(step: Step, task: Row[Any], rev: int, request: TaskAction, files: list[str]) -> None:
    if request.user is None:
        message = say(step.lang, "send `user`: who takes the task", "请提供 `user`：转交给谁")
        raise Invalid(message, issues=[Issue("/user", "required", message)])
    to = _one_user(step, request.user, task.assignee_id, "/user")
    step.close(
        task,
        rev,
        TRANSFERRED,
        decided_by=step.actor_id,
        decided_at=step.now,
        comment=request.comment,
    )
    new_id = step.new_task(task, to, status=PENDING, origin_task_id=task.id, added=task.added)
    step.event(
        "transfer" if step.actor_id == task.assignee_id else "reassign",
        task.node_id,
        task.id,
        by=step.actor_id,
        comment=request.comment,
        attachments=files,
        details={"from": task.assignee_id, "to": to, "task": new_id},
    )


def _add_approver(
    step: Step, task: Row[Any], rev: int, request: TaskAction, files: list[str]
) -> None:
    if request.position is None or not request.users:
        message = say(
            step.lang,
            'send `users` and `position` ("before", "after" or "alongside")',
            "请提供 `users` 和 `position`（before、after 或 alongside）",
        )
        raise Invalid(message, issues=[Issue("/users", "required", message)])
    if len(request.users) > MAX_ADDED:
        message = say(
            step.lang, f"add at most {MAX_ADDED} people at once", f"一次最多加签 {MAX_ADDED} 人"
        )
        raise Invalid(message, issues=[Issue("/users", "too_many", message)])
    added = [
        _one_user(step, u, task.assignee_id, f"/users/{k}") for k, u in enumerate(request.users)
    ]
    added = list(dict.fromkeys(added))
    table = approval_task
    same_chain = (
        table.c.token_id == task.token_id,
        table.c.slot == task.slot,
        table.c.status.in_(LIVE),
    )
    if request.position == "before":
        step.close(task, rev, WAITING)
        step.conn.execute(
            update(table)
            .where(*same_chain, table.c.seq >= task.seq)
            .values(seq=table.c.seq + len(added))
        )
        for k, person in enumerate(added):
            step.new_task(
                task,
                person,
                status=WAITING,
                added="before",
                origin_task_id=task.id,
                seq=task.seq + k,
            )
    elif request.position == "after":
        step.close(task, rev, PENDING)
        step.conn.execute(
            update(table)
            .where(*same_chain, table.c.seq > task.seq)
            .values(seq=table.c.seq + len(added))
        )
        for k, person in enumerate(added):
            step.new_task(
                task,
                person,
                status=WAITING,
                added="after",
                origin_task_id=task.id,
                seq=task.seq + 1 + k,
            )
    else:
        step.close(task, rev, PENDING)
        top = step.conn.execute(
            select(func.max(table.c.slot)).where(table.c.token_id == task.token_id)
        ).scalar_one()
        for k, person in enumerate(added):
            step.new_task(
                task,
                person,
                status=PENDING,
                added="alongside",
                origin_task_id=task.id,
                slot=int(top) + 1 + k,
                seq=0,
            )
    step.event(
        "add_approver",
        task.node_id,
        task.id,
        by=step.actor_id,
        comment=request.comment,
        attachments=files,
        details={"position": request.position, "users": added},
    )
    step.proceed(step.settle(task.token_id, task.node_id))


def _resubmit(step: Step, task: Row[Any], rev: int, request: TaskAction, files: list[str]) -> None:
    if request.approvers:
        chosen = checked_choices(
            step.org,
            step.flow,
            request.approvers,
            kind="submitter",
            at="/approvers",
            lang=step.lang,
        )
        step.choices["submitter"].update(chosen)
        step.save_choices()
    step.close(
        task,
        rev,
        COMPLETED,
        decided_by=step.actor_id,
        decided_at=step.now,
        comment=request.comment,
    )
    step.event(
        "resubmit",
        task.node_id,
        task.id,
        by=step.actor_id,
        comment=request.comment,
        attachments=files,
    )
    step.choosing = "submitter"
    step.resubmitted(task.token_id)


def _one_user(step: Step, user_id: int, assignee_id: int, at: str) -> int:
    if user_id == assignee_id:
        message = say(
            step.lang,
            f"user {user_id} already holds this task; choose someone else",
            f"用户 {user_id} 已是该任务的处理人，请选择其他人",
        )
        raise Invalid(message, issues=[Issue(at, "same_user", message)])
    if not Organisation(step.conn, step.env).active([user_id]):
        message = say(
            step.lang,
            f"user {user_id} does not exist or is deactivated; choose an active user",
            f"用户 {user_id} 不存在或已停用，请选择有效用户",
        )
        raise Invalid(message, issues=[Issue(at, "unknown_user", message)])
    return user_id


_HANDLERS: dict[str, Callable[[Step, Row[Any], int, TaskAction, list[str]], None]] = {
    "approve": _approve,
    "reject": _reject,
    "complete": _complete,
    "return": _return,
    "transfer": _transfer,
    "reassign": _transfer,
    "add_approver": _add_approver,
    "resubmit": _resubmit,
}

"""Actions on an instance: withdraw (撤回), remind (催办), comment, and the admins' terminate.

- ``withdraw``: the submitter, as the flow's ``withdraw`` policy allows: ``never``,
  ``before_decision`` (until an approver approves, rejects or returns), or
  ``while_running``;
- ``remind``: the submitter (or an admin) reminds the people of the open tasks;
- ``comment``: anyone taking part (or an admin) adds a comment, with attachments;
- ``terminate``: an administrator or the flow admin ends the instance.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from formloom.engine.errors import Issue
from formloom.platform.database import Workspace
from formloom.platform.errors import Invalid
from formloom.platform.flow_errors import ApprovalRefused, NotAllowed
from formloom.platform.flow_inbox import instance_view
from formloom.platform.flow_runtime import (
    approval_transaction,
    checked_attachments,
    is_admin,
    is_participant,
    open_step,
    require_admin,
    require_comment,
)
from formloom.platform.flow_state import TERMINATED, WITHDRAWN, read_instance
from formloom.platform.flow_step import Step
from formloom.platform.principal import Principal
from formloom.platform.record_errors import say

InstanceActionName = Literal["withdraw", "remind", "comment", "terminate"]


class InstanceAction(BaseModel):
    """A comment and attachments (file ids) for an action on an instance."""

    model_config = ConfigDict(extra="forbid")

    comment: str | None = Field(default=None, max_length=2000)
    attachments: list[str] = Field(default_factory=list)


def act_on_instance(
    workspace: Workspace,
    *,
    env: str,
    instance_id: int,
    action: str,
    request: InstanceAction,
    principal: Principal,
    lang: str = "en",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Carry out ``action`` on a running instance; the instance afterwards."""
    handler = _HANDLERS.get(action)
    if handler is None:
        message = f"unknown instance action `{action}`; use one of {', '.join(_HANDLERS)}"
        raise Invalid(message, issues=[Issue("/action", "unknown_action", message)])
    now = now or datetime.now(UTC)
    with approval_transaction(workspace, env, principal, lang) as conn:
        step = open_step(
            conn,
            workspace,
            env=env,
            instance_id=instance_id,
            actor_id=principal.user_id,
            lang=lang,
            now=now,
        )
        files = checked_attachments(conn, request.attachments, lang)
        handler(step, principal, request, files)
        instance = read_instance(conn, instance_id)
        assert instance is not None
        return instance_view(conn, workspace, env, instance, lang)


def _withdraw(step: Step, principal: Principal, request: InstanceAction, files: list[str]) -> None:
    _require_submitter(step, principal, "withdraw it", "撤回")
    policy = step.flow.document.withdraw
    if policy == "never" or (policy == "before_decision" and step.decided_at is not None):
        why = (
            ("flow `{0}` does not allow withdrawing", "流程 `{0}` 不允许撤回")
            if policy == "never"
            else (
                "flow `{0}` allows withdrawing only before an approver decides, and one has",
                "流程 `{0}` 只允许在审批人处理前撤回，而已有审批人处理",
            )
        )
        message = say(
            step.lang,
            why[0].format(step.flow.name)
            + f"; ask an administrator to terminate instance {step.instance_id} instead",
            why[1].format(step.flow.name) + f"；如需结束，请联系管理员终止实例 {step.instance_id}",
        )
        raise ApprovalRefused(message, code="withdraw_not_allowed")
    step.end(WITHDRAWN, by=step.actor_id, comment=request.comment, attachments=files)


def _remind(step: Step, principal: Principal, request: InstanceAction, files: list[str]) -> None:
    if principal.user_id != step.submitter_id and not is_admin(principal, step):
        _refuse(step, "remind", "催办")
    reminded = step.remind()
    step.event(
        "remind",
        by=step.actor_id,
        comment=request.comment,
        attachments=files,
        details={"users": reminded},
    )


def _comment(step: Step, principal: Principal, request: InstanceAction, files: list[str]) -> None:
    instance = read_instance(step.conn, step.instance_id)
    if not is_admin(principal, step) and not is_participant(step.conn, instance, principal.user_id):
        _refuse(step, "comment on it", "评论")
    comment = require_comment(
        request.comment, step.lang, "say what you want to add", "请填写评论内容"
    )
    step.event("comment", by=step.actor_id, comment=comment, attachments=files)


def _terminate(step: Step, principal: Principal, request: InstanceAction, files: list[str]) -> None:
    require_admin(principal, step, "terminate instances", "终止审批")
    step.end(TERMINATED, by=step.actor_id, comment=request.comment, attachments=files)


def _require_submitter(step: Step, principal: Principal, what: str, what_zh: str) -> None:
    if principal.user_id != step.submitter_id:
        raise NotAllowed(
            say(
                step.lang,
                f"only the submitter (user {step.submitter_id}) of instance {step.instance_id} "
                f"may {what}",
                f"只有审批实例 {step.instance_id} 的发起人"
                f"（用户 {step.submitter_id}）可以{what_zh}",
            )
        )


def _refuse(step: Step, what: str, what_zh: str) -> None:
    raise NotAllowed(
        say(
            step.lang,
            f"you take no part in approval instance {step.instance_id}, so you may not {what}",
            f"您未参与审批实例 {step.instance_id}，不能{what_zh}",
        )
    )


_HANDLERS: dict[str, Callable[[Step, Principal, InstanceAction, list[str]], None]] = {
    "withdraw": _withdraw,
    "remind": _remind,
    "comment": _comment,
    "terminate": _terminate,
}

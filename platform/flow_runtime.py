"""What every approval service shares: its transaction, the locked step, who may do what.

Each service (submit, task actions, instance actions, migration) is one
transaction in the environment's namespace (:func:`approval_transaction`); the
instance row is locked first (:func:`open_step`), so actions on one instance
run one after the other and each sees what the one before committed. Importing
this module registers the approval job types (timeouts, notify, webhook).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from formloom.engine.errors import Issue
from formloom.platform import flow_timers
from formloom.platform.database import Workspace
from formloom.platform.environments import require_environment_in
from formloom.platform.errors import Forbidden, Invalid
from formloom.platform.files import file_info
from formloom.platform.flow_errors import NotAllowed, instance_finished, not_found
from formloom.platform.flow_state import lock_instance, read_instance
from formloom.platform.flow_step import Step
from formloom.platform.principal import Principal
from formloom.platform.record_errors import say
from formloom.platform.tables import approval_task

__all__ = ["approval_transaction", "flow_timers", "open_step"]

MAX_ATTACHMENTS = 20


@contextmanager
def approval_transaction(
    workspace: Workspace, env: str, principal: Principal, lang: str, *, readonly: bool = False
) -> Iterator[Connection]:
    """A transaction in ``env`` for a user (the platform itself acts through jobs)."""
    if principal.user_id is None or not principal.may_enter(env):
        raise Forbidden(
            say(
                lang,
                f"approvals are acted on by users; this credential cannot act in `{env}`",
                f"审批由用户操作；此凭据不能在环境 `{env}` 中操作",
            )
        )
    with workspace.begin(env, readonly=readonly) as conn:
        require_environment_in(conn, env)
        yield conn


def open_step(
    conn: Connection,
    workspace: Workspace,
    *,
    env: str,
    instance_id: int,
    actor_id: int | None,
    lang: str,
    now: datetime,
) -> Step:
    """Lock the running instance and load its step; 404 or 409 (finished) otherwise."""
    instance = lock_instance(conn, instance_id, now)
    if instance is None:
        row = read_instance(conn, instance_id)
        if row is None:
            raise not_found(lang, env, "instance", instance_id)
        raise instance_finished(lang, instance_id, row.status)
    return Step(
        conn,
        cache_key=workspace.cache_key,
        env=env,
        instance=instance,
        now=now,
        actor_id=actor_id,
        lang=lang,
    )


def is_admin(principal: Principal, step: Step) -> bool:
    """A workspace administrator, or the flow's admin (流程管理员)."""
    admin = step.flow.document.admin
    return principal.admin or (admin is not None and admin == principal.user_id)


def require_admin(principal: Principal, step: Step, what: str, what_zh: str) -> None:
    if not is_admin(principal, step):
        raise NotAllowed(
            say(
                step.lang,
                f"only an administrator or the admin of flow `{step.flow.name}` may {what}",
                f"只有管理员或流程 `{step.flow.name}` 的流程管理员可以{what_zh}",
            )
        )


def is_participant(conn: Connection, instance: Any, user_id: int | None) -> bool:
    """The submitter, or someone with a task (or a copy) in the instance."""
    if user_id is None:
        return False
    if instance.submitter_id == user_id:
        return True
    query = select(approval_task.c.id).where(
        approval_task.c.instance_id == instance.id, approval_task.c.assignee_id == user_id
    )
    return conn.execute(query.limit(1)).first() is not None


def checked_attachments(conn: Connection, file_ids: Sequence[str], lang: str) -> list[str]:
    """The attachments' canonical file ids; 422 naming each one that is not an uploaded file."""
    issues = []
    found = []
    if len(file_ids) > MAX_ATTACHMENTS:
        message = say(
            lang,
            f"at most {MAX_ATTACHMENTS} attachments, got {len(file_ids)}",
            f"附件最多 {MAX_ATTACHMENTS} 个，实际 {len(file_ids)} 个",
        )
        raise Invalid(message, issues=[Issue("/attachments", "too_many", message)])
    for k, file_id in enumerate(file_ids):
        info = file_info(conn, file_id)
        if info is None:
            message = say(
                lang,
                f"attachment {file_id!r} is not an uploaded file; upload it first "
                "(POST /api/envs/<env>/files) and send the id it returns",
                f"附件 {file_id!r} 不是已上传的文件；请先上传（POST /api/envs/<env>/files）"
                "并提交返回的编号",
            )
            issues.append(Issue(f"/attachments/{k}", "unknown_file", message))
        else:
            found.append(info.id)
    if issues:
        raise Invalid(issues[0].message, issues=issues)
    return found


def require_comment(comment: str | None, lang: str, why_en: str, why_zh: str) -> str:
    if comment is None or not comment.strip():
        message = say(lang, f"a comment is required: {why_en}", f"需要填写意见：{why_zh}")
        raise Invalid(message, issues=[Issue("/comment", "comment_required", message)])
    return comment.strip()

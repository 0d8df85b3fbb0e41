"""Errors of the approval runtime; the HTTP layer renders them as problem+json.

Each names the instance or task, the cause and the fix, in the caller's
language (``say``). A lost race is a :class:`TaskAlreadyDecided` (409): the
conditional update of the loser matched no row.
"""

from __future__ import annotations

from formloom.engine.errors import Issue
from formloom.platform.errors import Conflict, Forbidden, Invalid, NotFound, PlatformError
from formloom.platform.record_errors import say


class ApprovalNotFound(NotFound):
    """No approval instance or task with that id in the environment."""

    code = "approval_not_found"


class NotAssignee(Forbidden):
    """Only a task's assignee may act on it (admins reassign instead)."""

    code = "not_assignee"


class NotAllowed(Forbidden):
    """The caller has no part in the instance, or is not its submitter or an admin."""

    code = "approval_forbidden"


class TaskAlreadyDecided(Conflict):
    """The task is no longer open: someone decided it first, or it was transferred."""

    code = "task_already_decided"


class InstanceFinished(Conflict):
    """The instance is no longer running."""

    code = "instance_finished"


class AlreadyInApproval(Conflict):
    """The record already has a running instance."""

    code = "already_in_approval"


class ApprovalRefused(Conflict):
    """The flow's rules refuse the action now (withdraw after a decision, migration mid-join…)."""

    code = "approval_refused"

    def __init__(self, message: str, *, code: str, at: str = "") -> None:
        super().__init__(message, issues=[Issue(at, code, message)])
        self.code = code


class ApprovalInvalid(Invalid):
    """The request breaks the flow's rules (no flow applies, a comment is missing…)."""

    def __init__(self, message: str, *, code: str, at: str = "") -> None:
        super().__init__(message, issues=[Issue(at, code, message)])


class RecordLocked(PlatformError):
    """The record is in approval: it changes only through the flow (HTTP 423 Locked)."""

    status = 423
    code = "record_in_approval"


def not_found(lang: str, env: str, what: str, ident: int) -> ApprovalNotFound:
    zh_what = {"instance": "审批实例", "task": "审批任务"}.get(what, what)
    message = say(
        lang,
        f"approval {what} {ident} does not exist in environment `{env}`; check the id "
        f"(your tasks: GET /api/envs/{env}/approvals/inbox)",
        f"环境 `{env}` 中不存在{zh_what} {ident}；请检查编号"
        f"（我的待办：GET /api/envs/{env}/approvals/inbox）",
    )
    return ApprovalNotFound(message, issues=[Issue("", ApprovalNotFound.code, message)])


def instance_finished(lang: str, instance_id: int, status: str) -> InstanceFinished:
    message = say(
        lang,
        f"approval instance {instance_id} is {status}: it no longer takes actions; "
        "reload it to see its outcome",
        f"审批实例 {instance_id} 已{_STATUS_ZH.get(status, status)}，不能再操作；请刷新查看结果",
    )
    return InstanceFinished(message, issues=[Issue("", InstanceFinished.code, message)])


def task_closed(lang: str, task_id: int, status: str, by: int | None) -> TaskAlreadyDecided:
    who = f" by user {by}" if by is not None else ""
    who_zh = f"（由用户 {by} 处理）" if by is not None else ""
    message = say(
        lang,
        f"task {task_id} is already {status}{who}: someone acted on it first, or it changed "
        "since you loaded it; reload your inbox",
        f"任务 {task_id} 已是「{_TASK_ZH.get(status, status)}」状态{who_zh}："
        "他人已先处理，或它在您加载后已变化；请刷新待办",
    )
    return TaskAlreadyDecided(message, issues=[Issue("", TaskAlreadyDecided.code, message)])


_STATUS_ZH = {
    "running": "审批中",
    "approved": "通过",
    "rejected": "被拒绝",
    "withdrawn": "撤回",
    "terminated": "终止",
}
_TASK_ZH = {
    "waiting": "等待中",
    "pending": "待处理",
    "approved": "已同意",
    "rejected": "已拒绝",
    "completed": "已办理",
    "returned": "已退回",
    "transferred": "已转交",
    "cancelled": "已取消",
}


def status_zh(status: str) -> str:
    """An instance status in Chinese (审批中, 通过…)."""
    return _STATUS_ZH.get(status, status)

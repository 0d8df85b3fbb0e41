"""HTTP routes of approvals (审批): ``/api/envs/{env}/...``.

- ``POST records/{entity}/{id}/approvals``: submit the record (``flow``, ``approvers``,
  ``comment``, ``attachments``); 201 with the instance.
- ``GET  records/{entity}/{id}/approvals``: the record's approval status and instances.
- ``POST approvals/tasks/{task_id}/{action}``: ``approve``, ``reject``, ``complete``,
  ``return``, ``transfer``, ``add_approver``, ``resubmit``, ``reassign`` (admins).
- ``POST approvals/instances/{id}/{action}``: ``withdraw``, ``remind``, ``comment``,
  ``terminate`` (admins); ``POST approvals/instances/{id}/migrate`` (admins).
- ``GET  approvals/inbox?box=pending|submitted|cc|done``; ``GET approvals/instances/{id}``;
  ``GET approvals/tasks/{task_id}`` (both with ``record``: the record as the current
  step lets the caller see it).
- ``GET  notifications``; ``POST notifications/read``.

See ``docs/approvals.md``. Errors are problem+json; a task someone else decided
first is a 409 ``task_already_decided``, a locked record a 423.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from formloom.platform import flow_inbox, flow_notifications
from formloom.platform.auth_deps import LangDep, PrincipalDep
from formloom.platform.deps import WorkspaceDep
from formloom.platform.flow_instances import InstanceAction, InstanceActionName, act_on_instance
from formloom.platform.flow_migration import migrate
from formloom.platform.flow_submit import submit
from formloom.platform.flow_tasks import TaskAction, TaskActionName, act_on_task

router = APIRouter(prefix="/api/envs/{env}", tags=["approvals"])


class SubmitRequest(BaseModel):
    """Submit a record for approval."""

    model_config = ConfigDict(extra="forbid")

    flow: str | None = Field(
        default=None, description="The flow to start (default: the one that applies)"
    )
    approvers: dict[str, list[int]] = Field(
        default_factory=dict, description="Steps assigned by the submitter: step → user ids"
    )
    comment: str | None = Field(default=None, max_length=2000)
    attachments: list[str] = Field(default_factory=list, description="Uploaded file ids")
    via: Literal["api", "manual"] = Field(default="api", description="How the flow starts")


class MigrateRequest(BaseModel):
    """Move a running instance to another version of its flow."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, description="Default: the version published now")
    mapping: dict[str, str] = Field(
        default_factory=dict, description="Active step → step of the target version"
    )


class ReadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[int] = Field(min_length=1, max_length=500)


@router.post("/records/{entity}/{record_id}/approvals", status_code=201)
def submit_record(
    env: str,
    entity: str,
    record_id: int,
    body: SubmitRequest,
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    lang: LangDep,
) -> dict[str, Any]:
    """Submit the record for approval (提交审批); the new instance."""
    return submit(
        workspace,
        env=env,
        entity=entity,
        record_id=record_id,
        principal=principal,
        flow=body.flow,
        approvers=body.approvers,
        comment=body.comment,
        attachments=body.attachments,
        via=body.via,
        lang=lang,
    )


@router.get("/records/{entity}/{record_id}/approvals")
def record_approvals(
    env: str,
    entity: str,
    record_id: int,
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    lang: LangDep,
) -> dict[str, Any]:
    """The record's approval status and its instances with their timelines."""
    return flow_inbox.record_approvals(
        workspace, env=env, entity=entity, record_id=record_id, principal=principal, lang=lang
    )


@router.get("/approvals/inbox")
def inbox(
    env: str,
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    lang: LangDep,
    box: flow_inbox.Box = "pending",
    limit: Annotated[int, Query(ge=1, le=flow_inbox.MAX_LIMIT)] = 50,
    after: Annotated[int | None, Query(description="`next` of the previous page")] = None,
) -> dict[str, Any]:
    """My pending tasks, what I submitted, copies to me, or what I acted on."""
    return flow_inbox.inbox(
        workspace, env=env, principal=principal, box=box, limit=limit, after=after, lang=lang
    )


@router.get("/approvals/instances/{instance_id}")
def instance(
    env: str, instance_id: int, workspace: WorkspaceDep, principal: PrincipalDep, lang: LangDep
) -> dict[str, Any]:
    """An instance: status, current steps, tasks and timeline."""
    return flow_inbox.instance_detail(
        workspace, env=env, instance_id=instance_id, principal=principal, lang=lang
    )


@router.get("/approvals/tasks/{task_id}")
def task(
    env: str, task_id: int, workspace: WorkspaceDep, principal: PrincipalDep, lang: LangDep
) -> dict[str, Any]:
    """A task, its instance and the record as the task's step lets the caller see it."""
    return flow_inbox.task_detail(
        workspace, env=env, task_id=task_id, principal=principal, lang=lang
    )


@router.post("/approvals/instances/{instance_id}/migrate")
def migrate_instance(
    env: str,
    instance_id: int,
    body: MigrateRequest,
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    lang: LangDep,
) -> dict[str, Any]:
    """Move a running instance to another flow version (administrators)."""
    return migrate(
        workspace,
        env=env,
        instance_id=instance_id,
        principal=principal,
        mapping=body.mapping,
        version=body.version,
        lang=lang,
    )


@router.post("/approvals/instances/{instance_id}/{action}")
def instance_action(
    env: str,
    instance_id: int,
    action: InstanceActionName,
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    lang: LangDep,
    body: InstanceAction | None = None,
) -> dict[str, Any]:
    """Withdraw, remind, comment on or terminate an instance."""
    return act_on_instance(
        workspace,
        env=env,
        instance_id=instance_id,
        action=action,
        request=body or InstanceAction(),
        principal=principal,
        lang=lang,
    )


@router.post("/approvals/tasks/{task_id}/{action}")
def task_action(
    env: str,
    task_id: int,
    action: TaskActionName,
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    lang: LangDep,
    body: TaskAction | None = None,
) -> dict[str, Any]:
    """Approve, reject, complete, return, transfer, add approvers, resubmit or reassign."""
    return act_on_task(
        workspace,
        env=env,
        task_id=task_id,
        action=action,
        request=body or TaskAction(),
        principal=principal,
        lang=lang,
    )


@router.get("/notifications")
def notifications(
    env: str,
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    lang: LangDep,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=flow_notifications.MAX_LIMIT)] = 50,
    after: Annotated[int | None, Query(description="`next` of the previous page")] = None,
) -> dict[str, Any]:
    """My in-app notifications, newest first."""
    return flow_notifications.list_notifications(
        workspace, env=env, principal=principal, unread=unread, limit=limit, after=after, lang=lang
    )


@router.post("/notifications/read")
def read_notifications(
    env: str, body: ReadRequest, workspace: WorkspaceDep, principal: PrincipalDep
) -> dict[str, int]:
    """Mark my notifications read."""
    changed = flow_notifications.mark_read(
        workspace, env=env, principal=principal, ids=body.ids, at=datetime.now(UTC)
    )
    return {"changed": changed}

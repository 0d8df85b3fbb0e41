"""Step timeouts (超时处理) as durable jobs: remind, escalate, approve or reject automatically.

When a task becomes pending, its step's timeouts are enqueued in the same
transaction (:meth:`~formloom.platform.flow_step.Step.task_opened`), each a job
due ``after`` the task opened. The payload carries the task, when it opened and
the timeout itself, so the job is self-contained (a migrated instance keeps
its timers). A restart neither loses a timer (it is a committed row) nor
repeats one:

- a timer whose task is no longer pending, or was reopened since (its
  ``activated_at`` differs), does nothing;
- a reminder is written with a key naming the task, its opening, the timeout
  and the reminder's number, and the next reminder is enqueued under such a key;
- escalations and automatic decisions are conditional updates of the task.

The handler acts at the timer's due time or later (``max(now, due)``): a test's
fake clock runs a worker pass at a time of its choosing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from formloom.engine.flows import parse_duration
from formloom.engine.flows.model import ApproverNode, Timeout
from formloom.platform.flow_state import (
    APPROVED,
    COMPLETED,
    PENDING,
    REJECTED,
    TRANSFERRED,
    lock_instance,
    read_task,
)
from formloom.platform.flow_step import TIMEOUT_JOB, Step
from formloom.platform.jobs import JobContext, JobType, enqueue, job_types

log = logging.getLogger(__name__)

DEFAULT_MAX_REMINDERS = 10


def due_at(payload: dict[str, Any]) -> datetime:
    """When a timeout job is due: the task's opening plus ``after`` (plus the repeats)."""
    timeout = Timeout.model_validate(payload["timeout"])
    opened = datetime.fromisoformat(payload["activated_at"])
    due = opened + parse_duration(timeout.after)
    if timeout.repeat_every and payload["count"] > 1:
        due += (payload["count"] - 1) * parse_duration(timeout.repeat_every)
    return due


def fire_timeout(
    conn: Connection, *, cache_key: str, env: str, payload: dict[str, Any], now: datetime
) -> str:
    """Carry out one timeout in the caller's transaction; what happened (for the log)."""
    task = read_task(conn, int(payload["task_id"]))
    if not _still_open(task, payload):
        return "stale"
    assert task is not None
    instance = lock_instance(conn, task.instance_id, now)
    if instance is None:
        return "finished"
    task = read_task(conn, task.id)
    if not _still_open(task, payload):
        return "stale"
    assert task is not None
    step = Step(
        conn,
        cache_key=cache_key,
        env=env,
        instance=instance,
        now=now,
        actor_id=None,
        lang="en",
    )
    timeout = Timeout.model_validate(payload["timeout"])
    node = step.person_node(task.node_id)
    if timeout.action == "remind":
        return _remind(step, task, timeout, payload)
    if timeout.action == "escalate":
        return _escalate(step, task, timeout)
    approve = timeout.action == "auto_approve"
    reason = "timeout_approve" if approve else "timeout_reject"
    step.event(
        "auto_approve" if approve else "auto_reject",
        node.id,
        task.id,
        by=None,
        details={"reason": reason, "users": [task.assignee_id]},
    )
    status = (APPROVED if isinstance(node, ApproverNode) else COMPLETED) if approve else REJECTED
    step.decide(task, task.rev, status, by=None, auto="timeout")
    return timeout.action


def _still_open(task: Any, payload: dict[str, Any]) -> bool:
    return (
        task is not None
        and task.status == PENDING
        and task.activated_at is not None
        and task.activated_at == datetime.fromisoformat(payload["activated_at"])
    )


def _remind(step: Step, task: Any, timeout: Timeout, payload: dict[str, Any]) -> str:
    count = int(payload["count"])
    key = f"timeout:{task.id}:{payload['activated_at']}:{payload['index']}:{count}"
    reminded = step.remind([task.id], dedupe_key=key)
    if reminded:
        step.event(
            "remind",
            task.node_id,
            task.id,
            by=None,
            details={"reason": "timeout_remind", "users": reminded, "count": count},
        )
    limit = timeout.max_reminders or DEFAULT_MAX_REMINDERS
    if timeout.repeat_every and count < limit:
        following = {**payload, "count": count + 1}
        enqueue(
            step.conn,
            job_type=TIMEOUT_JOB,
            payload=following,
            run_at=due_at(following),
            dedupe_key=(
                f"approval-timeout:{step.instance_id}:{task.id}:{payload['activated_at']}:"
                f"{payload['index']}:{count + 1}"
            ),
        )
    return "remind"


def _escalate(step: Step, task: Any, timeout: Timeout) -> str:
    target = timeout.escalate_to
    assert target is not None, "an escalate timeout names escalate_to"
    found: list[int] = []
    if target.type == "user":
        found = step.org.active([target.user])
    elif target.type == "manager":
        chain = step.org.managers(task.assignee_id, target.level)
        found = step.org.active(chain[-1:]) if len(chain) == target.level else []
    else:
        found = step.admins()[:1]
    if not found or found[0] == task.assignee_id:
        step.event(
            "escalate_failed",
            task.node_id,
            task.id,
            by=None,
            details={"reason": "timeout_escalate", "target": target.model_dump()},
        )
        return "escalate_failed"
    to = found[0]
    step.close(task, task.rev, TRANSFERRED, decided_at=step.now, auto="timeout")
    new_id = step.new_task(task, to, status=PENDING, origin_task_id=task.id, added=task.added)
    step.event(
        "escalate",
        task.node_id,
        task.id,
        by=None,
        details={"reason": "timeout_escalate", "from": task.assignee_id, "to": to, "task": new_id},
    )
    return "escalate"


class ApprovalTimeout(JobType):
    """Payload ``{instance_id, task_id, activated_at, index, timeout, count}``."""

    name = TIMEOUT_JOB

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        now = max(datetime.now(UTC), due_at(payload))
        with ctx.workspace.begin(ctx.env) as conn:
            outcome = fire_timeout(
                conn, cache_key=ctx.workspace.cache_key, env=ctx.env, payload=payload, now=now
            )
        log.info("approval timeout of task %s in `%s`: %s", payload["task_id"], ctx.env, outcome)


timeout_job = job_types.register(ApprovalTimeout())

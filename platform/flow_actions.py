"""Automatic actions of a flow (自动操作): set fields, notify, call a webhook.

``set_fields`` runs at once, in the step's transaction, through the records
service's writer acting for the platform (:class:`FlowWriter`): the save
pipeline checks the values, and the audit entry names the instance and node
as its cause. ``notify`` and ``webhook`` are jobs committed with the step
(:data:`NOTIFY_JOB`, :data:`WEBHOOK_JOB`): never lost, never run for a step that
rolled back. Both handlers are idempotent: notifications are keyed by the job
id, and the webhook sends the job id as ``Idempotency-Key``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from formloom.platform.audit import AuditEvent
from formloom.platform.entity_runtime import RuntimeEntity
from formloom.platform.flow_notifications import notify
from formloom.platform.jobs import JobContext, JobType, enqueue, job_types
from formloom.platform.record_writer import RecordWriter

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

NOTIFY_JOB = "approval_notify"
WEBHOOK_JOB = "approval_webhook"
WEBHOOK_TIMEOUT_SECONDS = 10.0


class FlowWriter(RecordWriter):
    """The records writer of a flow's own changes to its record.

    It acts for the platform (no permission checks, no actor), passes the
    record lock (the flow is what the lock lets through), and its audit entries
    name the instance and the node as their cause.
    """

    def __init__(
        self, conn: Connection, *, cache_key: str, env: str, lang: str, instance_id: int
    ) -> None:
        super().__init__(conn, cache_key=cache_key, env=env, actor_id=None, lang=lang)
        self.instance_id = instance_id
        self.node_id: str | None = None

    def check_lock(
        self,
        entity: RuntimeEntity,
        record_id: int | None,
        fields: set[str],
        *,
        at: str,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        """The flow changes its own record: nothing to refuse."""

    def audit(self, events: list[AuditEvent]) -> None:
        cause = {"approval_instance": self.instance_id, "node": self.node_id}
        super().audit([e if e.cause else dataclasses.replace(e, cause=cause) for e in events])


def set_fields(
    writer: FlowWriter,
    entity: RuntimeEntity,
    record_id: int,
    values: dict[str, Any],
    *,
    node_id: str,
) -> None:
    """Set ``values`` on the record as step ``node_id`` of the writer's instance."""
    writer.node_id = node_id
    current = writer.live_row(entity, record_id, at="")
    writer.update(
        entity,
        record_id,
        values,
        version=int(current["version"]),
        replace=False,
        at=f"/actions/{node_id}",
    )


def enqueue_notify(
    conn: Connection,
    user_ids: list[int],
    *,
    message: dict[str, str],
    channels: list[str],
    instance_id: int,
    node_id: str,
) -> int:
    """A job that writes ``message`` to the users (in-app; other channels are logged)."""
    payload = {
        "users": user_ids,
        "message": message,
        "channels": channels,
        "instance_id": instance_id,
        "node": node_id,
    }
    return enqueue(conn, job_type=NOTIFY_JOB, payload=payload)


def enqueue_webhook(conn: Connection, *, url: str, body: dict[str, Any]) -> int:
    """A job that posts ``body`` to ``url`` (retried with backoff until it gets a 2xx)."""
    return enqueue(conn, job_type=WEBHOOK_JOB, payload={"url": url, "body": body})


class ApprovalNotify(JobType):
    """Payload ``{users, message, channels, instance_id, node}``: in-app notifications."""

    name = NOTIFY_JOB

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        others = [c for c in payload.get("channels", []) if c != "in_app"]
        if others:
            log.info(
                "approval instance %s, node %s: channels %s are not connected yet; "
                "in-app notifications only",
                payload.get("instance_id"),
                payload.get("node"),
                ", ".join(others),
            )
        with ctx.workspace.begin(ctx.env) as conn:
            notify(
                conn,
                [int(u) for u in payload["users"]],
                kind="notify",
                message=payload["message"],
                at=datetime.now(UTC),
                instance_id=payload.get("instance_id"),
                dedupe_key=f"job:{ctx.job_id}",
            )


class WebhookFailed(Exception):
    """The receiver answered with something other than 2xx (the job is retried)."""


class ApprovalWebhook(JobType):
    """Payload ``{url, body}``: POST the body as JSON; the job id is the idempotency key.

    ``transport`` is httpx's transport (None: the network); tests swap in an
    ``httpx.MockTransport`` with :meth:`using`.
    """

    name = WEBHOOK_JOB

    def __init__(self) -> None:
        self.transport: httpx.BaseTransport | None = None

    @contextmanager
    def using(self, transport: httpx.BaseTransport) -> Iterator[None]:
        saved, self.transport = self.transport, transport
        try:
            yield
        finally:
            self.transport = saved

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        # Imported here: httpx is needed only by webhook jobs (see docs/approvals.md).
        import httpx

        headers = {
            "Idempotency-Key": f"formloom:{ctx.env}:{ctx.job_id}",
            "User-Agent": "formloom-approvals",
        }
        with httpx.Client(transport=self.transport, timeout=WEBHOOK_TIMEOUT_SECONDS) as client:
            response = client.post(payload["url"], json=payload["body"], headers=headers)
        if not 200 <= response.status_code < 300:
            raise WebhookFailed(
                f"webhook {payload['url']} answered {response.status_code}: {response.text[:200]}"
            )


notify_job = job_types.register(ApprovalNotify())
webhook_job = job_types.register(ApprovalWebhook())

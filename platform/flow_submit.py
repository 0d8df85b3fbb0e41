"""Submitting a record for approval (提交审批): pick the flow, pin its version, start.

The flow is the one named, or else the only published flow of the entity that
may start this way (``start_by``) and whose entry condition admits the record.
The instance is pinned to that flow's version now published, and runs until
its first steps that wait for people, in the submit's transaction. A record has
at most one running instance (a partial unique index refuses a concurrent
second submit), and the submitter must be allowed to change the record: a
running approval locks it (:mod:`formloom.platform.flow_locks`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, insert
from sqlalchemy.exc import IntegrityError

from formloom.engine.errors import Issue
from formloom.engine.flows import applies_to
from formloom.platform.access import load_access
from formloom.platform.database import Workspace
from formloom.platform.errors import Invalid
from formloom.platform.flow_approvers import Organisation
from formloom.platform.flow_choices import checked_choices, required_choices
from formloom.platform.flow_definitions import PinnedFlow, published_flows
from formloom.platform.flow_errors import AlreadyInApproval, ApprovalInvalid
from formloom.platform.flow_inbox import instance_view
from formloom.platform.flow_locks import running_instance
from formloom.platform.flow_runtime import approval_transaction, checked_attachments, open_step
from formloom.platform.flow_state import DONE, RUNNING, insert_token, read_instance
from formloom.platform.principal import Principal
from formloom.platform.record_context import WriteContext
from formloom.platform.record_errors import say
from formloom.platform.tables import approval_instance


def submit(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    record_id: int,
    principal: Principal,
    flow: str | None = None,
    approvers: Mapping[str, Sequence[int]] | None = None,
    comment: str | None = None,
    attachments: Sequence[str] = (),
    via: str = "api",
    lang: str = "en",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Start an approval of record ``record_id``; the new instance (see ``instance_view``).

    ``approvers`` holds the submitter's choices (step → user ids) for steps assigned
    by them (发起人自选). ``via`` is how it starts: ``api`` or ``manual``.
    """
    now = now or datetime.now(UTC)
    try:
        with approval_transaction(workspace, env, principal, lang) as conn:
            return _submit(
                conn,
                workspace,
                env=env,
                entity=entity,
                record_id=record_id,
                principal=principal,
                flow=flow,
                approvers=approvers or {},
                comment=comment,
                attachments=attachments,
                via=via,
                lang=lang,
                now=now,
            )
    except IntegrityError as exc:
        if "fl_approval_instance" not in str(exc.orig):
            raise
        raise _already(lang, env, entity, record_id, None) from None


def _submit(
    conn: Connection,
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    record_id: int,
    principal: Principal,
    flow: str | None,
    approvers: Mapping[str, Sequence[int]],
    comment: str | None,
    attachments: Sequence[str],
    via: str,
    lang: str,
    now: datetime,
) -> dict[str, Any]:
    assert principal.user_id is not None
    access = load_access(conn, cache_key=workspace.cache_key, env=env, principal=principal)
    ctx = WriteContext(
        conn,
        cache_key=workspace.cache_key,
        env=env,
        actor_id=principal.user_id,
        lang=lang,
        access=access,
    )
    runtime = ctx.entity(entity)
    row = cast(Mapping[str, Any], ctx.live_row(runtime, record_id, at=""))
    ctx.check_row(runtime, row, "update", at="")
    running = running_instance(conn, entity, record_id)
    if running is not None:
        raise _already(lang, env, entity, record_id, running.id)
    chosen = choose_flow(
        conn,
        workspace,
        env,
        runtime_entity=runtime,
        record=row,
        name=flow,
        via=via,
        lang=lang,
        now=now,
    )
    choices = checked_choices(
        Organisation(conn, env),
        chosen.compiled,
        approvers,
        kind="submitter",
        at="/approvers",
        lang=lang,
    )
    missing = required_choices(chosen.compiled, row, choices, now)
    if missing:
        issues = [
            Issue(
                f"/approvers/{node}",
                "choice_required",
                say(
                    lang,
                    f"step `{node}` of flow `{chosen.name}` is assigned by the submitter: "
                    f'choose who approves it, e.g. "approvers": {{"{node}": [<user id>]}}',
                    f"流程 `{chosen.name}` 的步骤 `{node}` 由发起人指定审批人：请选择，例如 "
                    f'"approvers": {{"{node}": [<用户编号>]}}',
                ),
            )
            for node in missing
        ]
        raise Invalid(issues[0].message, issues=issues)
    files = checked_attachments(conn, attachments, lang)
    instance_id = conn.execute(
        insert(approval_instance)
        .values(
            flow=chosen.name,
            flow_version=chosen.version,
            entity=entity,
            record_id=record_id,
            submitter_id=principal.user_id,
            status=RUNNING,
            round=1,
            choices={"submitter": choices, "previous": {}},
            rev=1,
            created_at=now,
            updated_at=now,
        )
        .returning(approval_instance.c.id)
    ).scalar_one()
    step = open_step(
        conn,
        workspace,
        env=env,
        instance_id=instance_id,
        actor_id=principal.user_id,
        lang=lang,
        now=now,
    )
    step.choosing = "submitter"
    insert_token(conn, {**step.token_values(step.start_id, DONE, None), "finished_at": now})
    step.event(
        "submit",
        step.start_id,
        by=principal.user_id,
        comment=comment,
        attachments=files,
        details={"flow": chosen.name, "version": chosen.version, "via": via},
    )
    step.proceed(step.after(step.start_id, None))
    instance = read_instance(conn, instance_id)
    assert instance is not None
    return instance_view(conn, workspace, env, instance, lang)


def choose_flow(
    conn: Connection,
    workspace: Workspace,
    env: str,
    *,
    runtime_entity: Any,
    record: Mapping[str, Any],
    name: str | None,
    via: str,
    lang: str,
    now: datetime,
) -> PinnedFlow:
    """The flow to start (see the module's docstring); 422 saying why none can."""
    entity = runtime_entity.name
    candidates = published_flows(
        conn, cache_key=workspace.cache_key, env=env, entity=runtime_entity
    )
    names = ", ".join(f"`{f.name}`" for f in candidates) or "none"
    if name is not None:
        found = next((f for f in candidates if f.name == name), None)
        if found is None:
            raise ApprovalInvalid(
                say(
                    lang,
                    f"flow `{name}` is not published for `{entity}` in environment `{env}`; "
                    f"published flows of `{entity}`: {names}",
                    f"环境 `{env}` 中没有为 `{entity}` 发布的流程 `{name}`；"
                    f"`{entity}` 已发布的流程：{names}",
                ),
                code="unknown_flow",
                at="/flow",
            )
        if via not in found.document.start_by:
            raise ApprovalInvalid(
                say(
                    lang,
                    f"flow `{name}` cannot be started by `{via}`; it starts by "
                    f"{', '.join(found.document.start_by)}",
                    f"流程 `{name}` 不能通过 `{via}` 发起；它的发起方式为 "
                    f"{', '.join(found.document.start_by)}",
                ),
                code="start_not_allowed",
                at="/flow",
            )
        if not applies_to(found.compiled, record, now=now):
            raise ApprovalInvalid(
                say(
                    lang,
                    f"`{entity}` {record['id']} does not meet the entry condition of flow "
                    f"`{name}` ({found.document.entry_condition}); change the record or "
                    "choose another flow",
                    f"`{entity}` 记录 {record['id']} 不满足流程 `{name}` 的发起条件"
                    f"（{found.document.entry_condition}）；请修改记录或选择其他流程",
                ),
                code="entry_condition_not_met",
                at="/flow",
            )
        return found
    eligible = [
        f
        for f in candidates
        if via in f.document.start_by and applies_to(f.compiled, record, now=now)
    ]
    if len(eligible) == 1:
        return eligible[0]
    if not eligible:
        raise ApprovalInvalid(
            say(
                lang,
                f"no approval flow applies to `{entity}` {record['id']}: published flows of "
                f"`{entity}`: {names}, none of which starts by `{via}` with an entry condition "
                "the record meets; publish a flow or change the record",
                f"没有适用于 `{entity}` 记录 {record['id']} 的审批流程：`{entity}` 已发布的流程："
                f"{names}，均不满足发起方式 `{via}` 或发起条件；请发布流程或修改记录",
            ),
            code="no_flow",
            at="/flow",
        )
    several = ", ".join(f"`{f.name}`" for f in eligible)
    raise ApprovalInvalid(
        say(
            lang,
            f"several approval flows apply to `{entity}` {record['id']} ({several}); "
            'name one with "flow"',
            f"有多个审批流程适用于 `{entity}` 记录 {record['id']}（{several}），"
            '请用 "flow" 指定其一',
        ),
        code="several_flows",
        at="/flow",
    )


def _already(
    lang: str, env: str, entity: str, record_id: int, instance_id: int | None
) -> AlreadyInApproval:
    which = f" (instance {instance_id})" if instance_id is not None else ""
    see = f"GET /api/envs/{env}/records/{entity}/{record_id}/approvals"
    message = say(
        lang,
        f"`{entity}` {record_id} is already in approval{which}; wait for the outcome or "
        f"withdraw it first (see {see})",
        f"`{entity}` 记录 {record_id} 已在审批中{which}；请等待结果或先撤回（见 {see}）",
    )
    return AlreadyInApproval(message, issues=[Issue("", AlreadyInApproval.code, message)])

"""Moving a running instance to another version of its flow, with an explicit node mapping.

Instances stay on the version they started with; publishing never moves them.
An administrator (or the flow admin) may migrate one (Camunda's migration
plan, in small): every active step must map to a step of the same type in the
target version (``mapping`` old → new; a step not named maps to the same id if
the target has it). Open tasks keep their people (they are not re-assigned).
Refused (409) while a parallel join is half done (some branches arrived, others
not) or a multi-person step is half decided (a countersign where some approved),
because the target version could count them differently.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update

from formloom.engine.errors import Issue
from formloom.platform.database import Workspace
from formloom.platform.errors import Invalid
from formloom.platform.flow_definitions import pinned_flow, published_version
from formloom.platform.flow_errors import ApprovalRefused
from formloom.platform.flow_inbox import instance_view
from formloom.platform.flow_runtime import approval_transaction, open_step, require_admin
from formloom.platform.flow_state import (
    ACTIVE,
    APPROVED,
    COMPLETED,
    OPEN,
    REJECTED,
    live_tokens,
    read_instance,
    token_tasks,
    update_instance,
)
from formloom.platform.flow_step import Step
from formloom.platform.principal import Principal
from formloom.platform.record_errors import say
from formloom.platform.tables import approval_task, approval_token


def migrate(
    workspace: Workspace,
    *,
    env: str,
    instance_id: int,
    principal: Principal,
    mapping: Mapping[str, str],
    version: int | None = None,
    lang: str = "en",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Move instance ``instance_id`` to ``version`` (default: the version published now)."""
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
        require_admin(principal, step, "migrate instances", "迁移审批实例")
        target_version = version if version is not None else published_version(conn, step.flow.name)
        if target_version is None or target_version == step.pinned.version:
            message = say(
                lang,
                f"instance {instance_id} is on version {step.pinned.version} of flow "
                f"`{step.flow.name}`; name another published version to migrate it to",
                f"实例 {instance_id} 已在流程 `{step.flow.name}` 的版本 {step.pinned.version}；"
                "请指定另一个已发布的版本",
            )
            raise Invalid(message, issues=[Issue("/version", "same_version", message)])
        try:
            target = pinned_flow(
                conn,
                cache_key=workspace.cache_key,
                env=env,
                name=step.flow.name,
                version=target_version,
                entity=step.entity,
            )
        except KeyError:
            message = say(
                lang,
                f"flow `{step.flow.name}` has no version {target_version}",
                f"流程 `{step.flow.name}` 没有版本 {target_version}",
            )
            raise Invalid(message, issues=[Issue("/version", "unknown_version", message)]) from None
        _refuse_half_done(step)
        moves = _moves(step, target.compiled.graph.nodes, mapping)
        for token_id, (_, new) in moves.items():
            conn.execute(
                update(approval_token).where(approval_token.c.id == token_id).values(node_id=new)
            )
            conn.execute(
                update(approval_task)
                .where(approval_task.c.token_id == token_id, approval_task.c.status.in_(OPEN))
                .values(node_id=new)
            )
        update_instance(conn, instance_id, flow_version=target_version)
        step.event(
            "migrate",
            by=step.actor_id,
            details={
                "from": step.pinned.version,
                "to": target_version,
                "mapping": {old: new for old, new in moves.values()},
            },
        )
        instance = read_instance(conn, instance_id)
        assert instance is not None
        return instance_view(conn, workspace, env, instance, lang)


def _refuse_half_done(step: Step) -> None:
    for token in live_tokens(step.conn, step.instance_id):
        if token.status != ACTIVE:
            message = say(
                step.lang,
                f"instance {step.instance_id} cannot be migrated now: parallel join "
                f"`{token.node_id}` is half done (some branches arrived, others not); "
                "migrate it once the join is passed",
                f"实例 {step.instance_id} 暂不能迁移：并行汇合 `{token.node_id}` 只完成了一部分"
                "分支；请在汇合完成后再迁移",
            )
            raise ApprovalRefused(message, code="join_half_done")
        tasks = token_tasks(step.conn, token.id)
        chains = {t.slot for t in tasks}
        decided = [t for t in tasks if t.status in (APPROVED, REJECTED, COMPLETED) and not t.auto]
        if len(chains) > 1 and decided and any(t.status in OPEN for t in tasks):
            message = say(
                step.lang,
                f"instance {step.instance_id} cannot be migrated now: step `{token.node_id}` "
                f"is half decided ({len(decided)} of {len(chains)} people acted); migrate it "
                "once the step is decided",
                f"实例 {step.instance_id} 暂不能迁移：步骤 `{token.node_id}` 只有部分人处理"
                f"（{len(chains)} 人中 {len(decided)} 人已处理）；请在该步骤完成后再迁移",
            )
            raise ApprovalRefused(message, code="step_half_done")


def _moves(
    step: Step, target_nodes: Mapping[str, Any], mapping: Mapping[str, str]
) -> dict[int, tuple[str, str]]:
    """token id → (old node, new node) for every active step; 422 listing what does not map."""
    issues = []
    moves: dict[int, tuple[str, str]] = {}
    for old in mapping:
        if old not in step.flow.graph.nodes:
            issues.append(
                Issue(
                    f"/mapping/{old}",
                    "unknown_node",
                    say(
                        step.lang,
                        f"`{old}` is not a step of version {step.pinned.version}",
                        f"`{old}` 不是版本 {step.pinned.version} 的步骤",
                    ),
                )
            )
    for token in live_tokens(step.conn, step.instance_id):
        new = mapping.get(token.node_id, token.node_id)
        node = target_nodes.get(new)
        old_type = step.flow.node(token.node_id).type
        if node is None or node.type != old_type:
            found = "missing" if node is None else f"a {node.type} step"
            issues.append(
                Issue(
                    f"/mapping/{token.node_id}",
                    "unmapped_step",
                    say(
                        step.lang,
                        f"active step `{token.node_id}` ({old_type}) maps to `{new}`, which is "
                        f"{found} in the target version; map it to a {old_type} step",
                        f"当前步骤 `{token.node_id}`（{old_type}）映射到 `{new}`，但目标版本中"
                        f"该步骤{'不存在' if node is None else '类型为 ' + node.type}；"
                        f"请映射到 {old_type} 类型的步骤",
                    ),
                )
            )
        else:
            moves[token.id] = (token.node_id, new)
    if issues:
        raise Invalid(issues[0].message, issues=issues)
    return moves

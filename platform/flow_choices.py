"""Approvers chosen by people: by the submitter when submitting (发起人自选), and by an
approver for the next step (上一节点审批人指定).

:func:`checked_choices` checks what was sent against the steps' choice sources
(the step must have one, one person unless ``multiple``, within ``among``,
active users) and reports every problem at once. :func:`required_choices`
names the steps on the record's path that wait for the submitter's choice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from formloom.engine.errors import Issue
from formloom.engine.flows import CompiledFlow, next_nodes
from formloom.engine.flows.approvers import PreviousApproverChoiceSource, SubmitterChoiceSource
from formloom.engine.flows.model import ApproverNode, CcNode, HandlerNode
from formloom.platform.errors import Invalid
from formloom.platform.flow_approvers import Organisation
from formloom.platform.record_errors import say

MAX_CHOSEN = 50


def _sources(flow: CompiledFlow, node_id: str, kind: str) -> list[Any]:
    node = flow.graph.nodes.get(node_id)
    wanted = SubmitterChoiceSource if kind == "submitter" else PreviousApproverChoiceSource
    if isinstance(node, ApproverNode | HandlerNode):
        return [s for s in node.assignees if isinstance(s, wanted)]
    if isinstance(node, CcNode):
        return [s for s in node.recipients if isinstance(s, wanted)]
    return []


def checked_choices(
    org: Organisation,
    flow: CompiledFlow,
    given: Mapping[str, Sequence[int]],
    *,
    kind: str,
    at: str,
    lang: str,
) -> dict[str, list[int]]:
    """``given`` (step → user ids) checked; ``kind`` is ``submitter`` or ``previous``."""
    issues: list[Issue] = []
    checked: dict[str, list[int]] = {}
    who_en = "the submitter" if kind == "submitter" else "the previous approver"
    who_zh = "发起人" if kind == "submitter" else "上一步审批人"
    for node_id, raw in given.items():
        where = f"{at}/{node_id}"
        users = list(dict.fromkeys(raw))
        sources = _sources(flow, node_id, kind)
        if not sources:
            steps = [n for n in flow.graph.nodes if _sources(flow, n, kind)]
            listed = ", ".join(f"`{n}`" for n in steps) or "none"
            issues.append(
                Issue(
                    where,
                    "not_a_choice",
                    say(
                        lang,
                        f"step `{node_id}` of flow `{flow.name}` is not chosen by {who_en}; "
                        f"steps chosen by {who_en}: {listed}",
                        f"流程 `{flow.name}` 的步骤 `{node_id}` 不由{who_zh}指定；"
                        f"由{who_zh}指定的步骤：{listed}",
                    ),
                )
            )
            continue
        source = sources[0]
        problem = _problem(org, source, users, node_id, lang)
        if problem:
            issues.append(Issue(where, "invalid_choice", problem))
        else:
            checked[node_id] = users
    if issues:
        raise Invalid(issues[0].message, issues=issues)
    return checked


def _problem(
    org: Organisation, source: Any, users: list[int], node_id: str, lang: str
) -> str | None:
    if not users:
        return say(
            lang,
            f"step `{node_id}`: choose at least one user",
            f"步骤 `{node_id}`：请至少选择一位用户",
        )
    if len(users) > (MAX_CHOSEN if source.multiple else 1):
        return say(
            lang,
            f"step `{node_id}` takes one person, got {len(users)}",
            f"步骤 `{node_id}` 只能选择一人，实际选择了 {len(users)} 人",
        )
    inactive = [u for u in users if u not in set(org.active(users))]
    if inactive:
        return say(
            lang,
            f"step `{node_id}`: user(s) {inactive} do not exist or are deactivated",
            f"步骤 `{node_id}`：用户 {inactive} 不存在或已停用",
        )
    outside = org.outside_range(users, source.among)
    if outside:
        allowed = ", ".join([*(str(u) for u in source.among.users), *source.among.roles])
        return say(
            lang,
            f"step `{node_id}`: user(s) {outside} are outside the choice allowed ({allowed})",
            f"步骤 `{node_id}`：用户 {outside} 不在可选范围内（{allowed}）",
        )
    return None


def required_choices(
    flow: CompiledFlow, record: Mapping[str, Any], given: Mapping[str, Any], now: datetime
) -> list[str]:
    """The steps on the record's path (as it is now) that the submitter must choose for."""
    start = flow.graph.start
    assert start is not None
    seen: list[str] = []
    queue = [start]
    while queue:
        for node_id in next_nodes(flow, queue.pop(0), record, now=now):
            if node_id not in seen:
                seen.append(node_id)
                queue.append(node_id)
    return [n for n in seen if _sources(flow, n, "submitter") and n not in given]

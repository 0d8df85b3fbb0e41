"""The approver policies of a step, applied in ``RESOLUTION_ORDER`` (DESIGN §6).

1. the node's own automatic decision (``auto_decision``);
2. nobody resolved (``empty_approver``): pass, reject, hand to a user or the flow admin;
3. the submitter is among the approvers (``approver_is_submitter``): approve as
   normal, skip them, or hand their task to their manager;
4. an approver who already approved (``repeated_approver``): once for all, only
   for the step just after, or every time.

:func:`staff` only decides; the step writes the tasks and one timeline entry per
automatic decision (:class:`AutoDecision`), each with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Literal

from formloom.engine.flows import ApproverPolicies
from formloom.engine.flows.model import ApproverNode, HandlerNode

Outcome = Literal["approved", "rejected"]

#: Why the platform decided: the timeline shows these texts (en, zh).
REASONS: dict[str, tuple[str, str]] = {
    "auto_decision_approve": ("the step approves automatically", "该步骤设置为自动通过"),
    "auto_decision_reject": ("the step rejects automatically", "该步骤设置为自动拒绝"),
    "empty_approve": ("no approver, approved automatically", "审批人为空，自动通过"),
    "empty_reject": ("no approver, rejected automatically", "审批人为空，自动拒绝"),
    "empty_user": ("no approver, handed to the named user", "审批人为空，转交给指定人员"),
    "empty_admin": ("no approver, handed to the flow admin", "审批人为空，转交给流程管理员"),
    "nobody": (
        "no approver and no administrator to hand to, approved automatically",
        "审批人为空且无管理员可转交，自动通过",
    ),
    "submitter_skipped": (
        "the approver is the submitter, skipped",
        "审批人与发起人为同一人，跳过",
    ),
    "submitter_only": (
        "the approver is the submitter, approved automatically",
        "审批人与发起人为同一人，自动通过",
    ),
    "submitter_manager": (
        "the approver is the submitter, handed to their manager",
        "审批人与发起人为同一人，转交给其直属主管",
    ),
    "repeated_approver": (
        "the approver already approved, approved automatically",
        "审批人重复出现，自动通过",
    ),
    "timeout_approve": ("timed out, approved automatically", "超时自动通过"),
    "timeout_reject": ("timed out, rejected automatically", "超时自动拒绝"),
    "timeout_escalate": ("timed out, escalated", "超时自动转交"),
    "timeout_remind": ("timed out, reminded", "超时自动催办"),
}


@dataclass(frozen=True)
class AutoDecision:
    """One automatic decision, for the timeline: ``action`` and why (a key of :data:`REASONS`)."""

    action: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Staffing:
    """Who acts on a step after the policies, and what the platform decided itself.

    ``outcome`` set: the step decided without anyone (no tasks). ``auto_approved``: people
    whose task is approved at once (repeated approver).
    """

    people: list[int]
    auto_approved: set[int] = field(default_factory=set)
    outcome: Outcome | None = None
    decisions: list[AutoDecision] = field(default_factory=list)


@dataclass(frozen=True)
class History:
    """Who approved earlier in this round: anywhere, and on the step just before (asked only
    when the repeated-approver policy needs it)."""

    approved_before: Callable[[], Collection[int]]
    approved_previous_step: Callable[[], Collection[int]]


def staff(
    node: ApproverNode | HandlerNode,
    people: list[int],
    *,
    policies: ApproverPolicies,
    submitter_id: int,
    admins: Callable[[], list[int]],
    manager_of: Callable[[int], int | None],
    history: History,
) -> Staffing:
    """Apply the node's policies to the people its sources resolved to.

    ``admins`` gives the flow admin (or the environment's administrators) when the
    empty-approver policy hands the step to them.
    """
    if isinstance(node, ApproverNode) and node.auto_decision is not None:
        approve = node.auto_decision == "auto_approve"
        reason = "auto_decision_approve" if approve else "auto_decision_reject"
        return Staffing(
            [],
            outcome="approved" if approve else "rejected",
            decisions=[AutoDecision(node.auto_decision, reason)],
        )
    staffing = Staffing(list(people))
    if not staffing.people:
        _empty(staffing, policies, admins)
        if staffing.outcome is not None or isinstance(node, HandlerNode):
            return staffing
    elif isinstance(node, HandlerNode):
        return staffing
    _submitter(staffing, policies, submitter_id, manager_of)
    if staffing.outcome is None:
        _repeated(staffing, policies, history)
    return staffing


def _empty(staffing: Staffing, policies: ApproverPolicies, admins: Callable[[], list[int]]) -> None:
    policy = policies.empty_approver
    if policy.action == "auto_approve":
        staffing.outcome = "approved"
        staffing.decisions.append(AutoDecision("auto_approve", "empty_approve"))
    elif policy.action == "auto_reject":
        staffing.outcome = "rejected"
        staffing.decisions.append(AutoDecision("auto_reject", "empty_reject"))
    elif policy.action == "assign_to_user" and policy.user is not None:
        staffing.people = [policy.user]
        staffing.decisions.append(
            AutoDecision("auto_assign", "empty_user", {"users": [policy.user]})
        )
    else:
        staffing.people = admins()[:1]
        staffing.decisions.append(
            AutoDecision("auto_assign", "empty_admin", {"users": staffing.people})
        )
    if staffing.outcome is None and not staffing.people:
        staffing.outcome = "approved"
        staffing.decisions.append(AutoDecision("auto_approve", "nobody"))


def _submitter(
    staffing: Staffing,
    policies: ApproverPolicies,
    submitter_id: int,
    manager_of: Callable[[int], int | None],
) -> None:
    if submitter_id not in staffing.people or policies.approver_is_submitter == "approve_as_normal":
        return
    at = staffing.people.index(submitter_id)
    if policies.approver_is_submitter == "manager":
        manager = manager_of(submitter_id)
        if manager is not None and manager not in staffing.people:
            staffing.people[at] = manager
            staffing.decisions.append(
                AutoDecision("auto_assign", "submitter_manager", {"users": [manager]})
            )
            return
    del staffing.people[at]
    staffing.decisions.append(
        AutoDecision("auto_skip", "submitter_skipped", {"users": [submitter_id]})
    )
    if not staffing.people:
        staffing.outcome = "approved"
        staffing.decisions.append(AutoDecision("auto_approve", "submitter_only"))


def _repeated(staffing: Staffing, policies: ApproverPolicies, history: History) -> None:
    rule = policies.repeated_approver
    if rule == "every_time":
        return
    ask = history.approved_before if rule == "once_for_all" else history.approved_previous_step
    earlier = ask()
    repeated = [p for p in staffing.people if p in earlier]
    if repeated:
        staffing.auto_approved = set(repeated)
        staffing.decisions.append(
            AutoDecision("auto_approve", "repeated_approver", {"users": repeated})
        )

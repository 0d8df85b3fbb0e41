"""A flow compiled for the runtime, and the pure functions the runtime asks it.

:func:`compile_flow` checks a flow's graph and conditions against its entity
(raising :class:`~formloom.engine.errors.DocumentInvalid` with every issue) and
returns a :class:`CompiledFlow`; the `flow` kind runs the same checks
(:func:`check_nodes`), so a published flow always compiles. Then:

- :func:`next_nodes` — where tokens go when a node completes;
- :func:`join_of` — the parallel join that closes a split;
- :func:`return_targets` — where a node may return the record to (退回);
- :func:`applies_to` — whether the entry condition admits a record;
- :func:`node_policies` — a node's approver policies, flow defaults filled in.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from formloom.engine.errors import DocumentInvalid, EngineError, Issue, pointer
from formloom.engine.flows.approvers import ApproverPolicies
from formloom.engine.flows.graph import FlowGraph, analyse, declared_targets
from formloom.engine.flows.model import (
    ApproverNode,
    ConditionNode,
    EndNode,
    FlowDoc,
    HandlerNode,
    Node,
    ParallelSplitNode,
)
from formloom.engine.relative_dates import DEFAULT_TIMEZONE, timezone_named

if TYPE_CHECKING:
    from formloom.engine.conditions import Condition
    from formloom.engine.records.compiled import CompiledEntity

#: The timezone relative dates in flow conditions are resolved in (``this_month``…).
FLOW_TZ: tzinfo = timezone_named(DEFAULT_TIMEZONE) or UTC


class FlowError(EngineError):
    """A runtime question about a flow that its definition cannot answer."""


class UnknownNode(FlowError, LookupError):
    """A node id that the flow does not have (or not of the type asked for)."""


@dataclass(frozen=True)
class FlowCondition:
    """A checked condition; ``parsed`` is None when it uses relative dates (parsed per use)."""

    raw: dict[str, Any]
    parsed: Condition | None

    def matches(
        self, record: Mapping[str, Any], entity: CompiledEntity, *, now: datetime | None
    ) -> bool:
        condition = self.parsed
        if condition is None:
            condition = _parse(self.raw, entity, now or datetime.now(UTC), "")
        return condition.matches(record)


@dataclass(frozen=True)
class CompiledFlow:
    """A valid flow, its entity, its analysed graph and its parsed conditions."""

    document: FlowDoc
    entity: CompiledEntity
    graph: FlowGraph
    #: (condition node id, branch index) → the branch's condition (none for the default)
    branches: Mapping[tuple[str, int], FlowCondition]
    entry: FlowCondition | None

    @property
    def name(self) -> str:
        return self.document.name

    def node(self, node_id: str) -> Node:
        """The node with this id; raises :class:`UnknownNode` (with a suggestion) otherwise."""
        found = self.graph.nodes.get(node_id)
        if found is None:
            close = difflib.get_close_matches(node_id, list(self.graph.nodes), n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise UnknownNode(f"flow `{self.name}` has no node `{node_id}`{hint}")
        return found


def compile_flow(
    document: FlowDoc, entity: CompiledEntity, *, now: datetime | None = None
) -> CompiledFlow:
    """Check ``document``'s graph and conditions against ``entity`` and compile it.

    Raises :class:`DocumentInvalid` listing every problem. References to the
    environment (roles, users, fields of approvers and actions) are the `flow`
    kind's checks; they do not change how the flow runs.
    """
    checked = check_nodes(document.nodes, document.entry_condition, entity, now=now)
    if checked.issues:
        raise DocumentInvalid(checked.issues)
    return CompiledFlow(document, entity, checked.graph, checked.branches, checked.entry)


@dataclass(frozen=True)
class CheckedNodes:
    """The analysed graph and parsed conditions of a flow's nodes, and every issue found."""

    graph: FlowGraph
    branches: dict[tuple[str, int], FlowCondition]
    entry: FlowCondition | None
    issues: list[Issue]


def check_nodes(
    nodes: Sequence[Node],
    entry_condition: dict[str, Any] | None,
    entity: CompiledEntity | None,
    *,
    now: datetime | None = None,
) -> CheckedNodes:
    """Check a flow's graph, branches and conditions (against ``entity`` when there is one).

    Without an entity (it does not exist) the conditions are not parsed.
    """
    moment = now or datetime.now(UTC)
    issues: list[Issue] = []
    entry = None
    branches: dict[tuple[str, int], FlowCondition] = {}
    if entity is not None:
        if entry_condition is not None:
            entry, found = _condition(entry_condition, entity, moment, "/entry_condition")
            issues += _named(found, "entry condition")
        for i, node in enumerate(nodes):
            if isinstance(node, ConditionNode):
                issues += _branch_conditions(node, i, entity, moment, branches)
    for i, node in enumerate(nodes):
        if isinstance(node, ConditionNode):
            issues += _default_issues(node, pointer("nodes", i))
    graph, found = analyse(nodes)
    return CheckedNodes(graph, branches, entry, issues + found)


def _condition(
    raw: dict[str, Any], entity: CompiledEntity, now: datetime, at: str
) -> tuple[FlowCondition | None, list[Issue]]:
    # Imported here: see `_parse`.
    from formloom.engine.records.rule_compiler import has_relative_date

    try:
        parsed = _parse(raw, entity, now, at)
    except DocumentInvalid as exc:
        return None, exc.issues
    return FlowCondition(raw, None if has_relative_date(raw) else parsed), []


def _parse(raw: dict[str, Any], entity: CompiledEntity, now: datetime, at: str) -> Condition:
    # Imported here: conditions import the entities package, whose kind imports the
    # kind registry, which imports this package to register the `flow` kind.
    from formloom.engine.conditions import parse_condition

    return parse_condition(raw, entity, now=now, tz=FLOW_TZ, at=at)


def _branch_conditions(
    node: ConditionNode,
    i: int,
    entity: CompiledEntity,
    now: datetime,
    out: dict[tuple[str, int], FlowCondition],
) -> list[Issue]:
    issues = []
    for k, branch in enumerate(node.branches):
        if branch.condition is None or branch.default:
            continue
        at = pointer("nodes", i, "branches", k, "condition")
        compiled, found = _condition(branch.condition, entity, now, at)
        issues += _named(found, f"node `{node.id}`, branch {k + 1}")
        if compiled is not None:
            out[(node.id, k)] = compiled
    return issues


def _default_issues(node: ConditionNode, at: str) -> list[Issue]:
    """Exactly one default branch, without a condition; every other branch has one."""
    issues = []
    defaults = [k for k, b in enumerate(node.branches) if b.default]
    if not defaults:
        issues.append(
            Issue(
                at + "/branches",
                "no_default_branch",
                f"condition node `{node.id}` has no default branch, so a record that matches "
                'no condition would stop here; mark one branch `"default": true` (其他情况)',
            )
        )
    for k in defaults[1:]:
        issues.append(
            Issue(
                at + pointer("branches", k, "default"),
                "multiple_default_branches",
                f"condition node `{node.id}` has more than one default branch (branch "
                f"{defaults[0] + 1} is the first); keep one default and give the others a "
                "condition",
            )
        )
    for k, branch in enumerate(node.branches):
        where = at + pointer("branches", k)
        if branch.default and branch.condition is not None:
            issues.append(
                Issue(
                    where + "/condition",
                    "default_with_condition",
                    f"condition node `{node.id}`, branch {k + 1} is the default branch, taken "
                    "when no other branch matches, so it cannot have a condition; remove the "
                    "condition or `default`",
                )
            )
        elif not branch.default and branch.condition is None:
            issues.append(
                Issue(
                    where,
                    "missing_condition",
                    f"condition node `{node.id}`, branch {k + 1} has no `condition`; give it "
                    'one, or make it the default branch with `"default": true`',
                )
            )
    return issues


def _named(issues: list[Issue], where: str) -> list[Issue]:
    return [Issue(i.path, i.code, f"{where}: {i.message}") for i in issues]


# -- runtime questions -----------------------------------------------------------------------


def next_nodes(
    flow: CompiledFlow,
    node_id: str,
    record: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> tuple[str, ...]:
    """The nodes that get a token when ``node_id`` completes, for this record.

    Gateways hold no token: a condition node is passed through to the target of
    its first branch whose condition ``record`` (field name → value) matches, else
    its default branch; a parallel split fans out to the start of every branch, in
    order. So the result holds approver, handler, cc, action, parallel join and end
    nodes only. Asked about a condition node or a split, the answer is where it
    routes. An end node has no next nodes. ``now`` resolves relative dates in
    conditions (default: the current time).
    """
    node = flow.node(node_id)
    if isinstance(node, EndNode):
        return ()
    if isinstance(node, ConditionNode | ParallelSplitNode):
        pending = [node_id]
    else:
        assert node.next is not None, "a compiled flow links every node but the ends"
        pending = [node.next]
    found: list[str] = []
    while pending:
        current = flow.graph.nodes[pending.pop(0)]
        if isinstance(current, ConditionNode):
            pending.insert(0, _chosen_branch(flow, current, record, now))
        elif isinstance(current, ParallelSplitNode):
            pending[0:0] = current.branches
        elif current.id not in found:
            found.append(current.id)
    return tuple(found)


def _chosen_branch(
    flow: CompiledFlow, node: ConditionNode, record: Mapping[str, Any], now: datetime | None
) -> str:
    default = None
    for k, branch in enumerate(node.branches):
        if branch.default:
            default = branch.to
        elif flow.branches[(node.id, k)].matches(record, flow.entity, now=now):
            return branch.to
    assert default is not None, "a compiled condition node has a default branch"
    return default


def join_of(flow: CompiledFlow, split_id: str) -> str:
    """The parallel join that closes the parallel split ``split_id``."""
    node = flow.node(split_id)
    if not isinstance(node, ParallelSplitNode):
        raise UnknownNode(
            f"node `{split_id}` of flow `{flow.name}` is not a parallel split (its type is "
            f"`{node.type}`)"
        )
    return flow.graph.joins[split_id]


def return_targets(flow: CompiledFlow, node_id: str) -> tuple[str, ...]:
    """The earlier nodes ``node_id`` may return the record to (退回), earliest first.

    These are the targets the flow declares (``"earlier"``: every earlier start,
    approver and handler node outside parallel branches the node is not in). The
    runtime offers only those the instance has passed through. Empty for nodes
    that cannot return.
    """
    flow.node(node_id)
    targets = declared_targets(flow.graph, node_id)
    return tuple(sorted(targets, key=flow.graph.order.__getitem__))


def applies_to(
    flow: CompiledFlow, record: Mapping[str, Any], *, now: datetime | None = None
) -> bool:
    """Whether the flow's entry condition admits ``record`` (true without one)."""
    if flow.entry is None:
        return True
    return flow.entry.matches(record, flow.entity, now=now)


def node_policies(flow: CompiledFlow, node_id: str) -> ApproverPolicies:
    """The policies of an approver or handler node: its own, else the flow's.

    Handlers take only `empty_approver` from this (they neither decide nor repeat).
    """
    node = flow.node(node_id)
    if not isinstance(node, ApproverNode | HandlerNode):
        raise UnknownNode(
            f"node `{node_id}` of flow `{flow.name}` has no approver policies (its type is "
            f"`{node.type}`); only approver and handler nodes have them"
        )
    defaults = flow.document.policies
    if isinstance(node, HandlerNode):
        return defaults.model_copy(
            update={"empty_approver": node.empty_approver or defaults.empty_approver}
        )
    return ApproverPolicies(
        empty_approver=node.empty_approver or defaults.empty_approver,
        approver_is_submitter=node.approver_is_submitter or defaults.approver_is_submitter,
        repeated_approver=node.repeated_approver or defaults.repeated_approver,
    )

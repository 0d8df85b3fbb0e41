"""The graph of a flow: structural checks with networkx, and what the runtime derives from it.

:func:`analyse` builds the *forward* graph (``next``, condition branches,
parallel branches) and checks it, reporting every problem as an
:class:`~formloom.engine.errors.Issue` that names the node and the fix:

1. node ids are unique and every link names a node (else nothing more is checked:
   the graph would not be the one the designer meant);
2. exactly one start and at least one end;
3. every node is reachable from the start and can reach an end;
4. the forward graph has no cycle: loops only go through declared return links
   (``returnable_to``), which are not part of it;
5. every parallel split is closed by its own parallel join, the split's
   immediate post-dominator (every path from the split goes through it), and
   its region is entered only through the split and left only through the join;
   its branches meet nowhere before the join (a node there would run twice);
6. return targets are earlier start, approver or handler nodes, not inside a
   parallel branch the returning node is not in.

Checks 5 and 6 run once 1-4 hold. Ancestry is kept as bitsets (one Python int
per node, bit ``i`` = the ``i``-th node in topological order), so a 1,000-node
flow is checked in milliseconds.
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import networkx as nx

from formloom.engine.errors import Issue, pointer
from formloom.engine.flows.model import (
    ApproverNode,
    ConditionNode,
    EndNode,
    HandlerNode,
    Node,
    ParallelJoinNode,
    ParallelSplitNode,
    StartNode,
)

#: A virtual node after every end node (not a valid node id, so it cannot collide).
SINK = "__sink__"
#: Node types a return (退回) may go back to.
RETURN_TARGET_TYPES = ("start", "approver", "handler")
_LISTED = 12

#: Where a node sits: the (parallel split, branch index) pairs enclosing it, outermost first.
RegionPath = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Link:
    """A forward link between two nodes, and the JSON pointer that declares it."""

    source: str
    target: str
    path: str


@dataclass
class FlowGraph:
    """A flow's nodes, forward graph and declared returns, plus what :func:`analyse` derived.

    ``sound`` is true when every check passed; only then do ``joins``, ``regions``
    and ``order`` cover the whole flow.
    """

    nodes: dict[str, Node]
    index: dict[str, int]
    forward: nx.DiGraph[str]
    links: dict[tuple[str, str], list[str]]
    declared_returns: dict[str, list[str] | str]
    start: str | None = None
    sound: bool = False
    #: parallel split → its join
    joins: dict[str, str] = field(default_factory=dict)
    #: node → enclosing parallel branches (nodes outside every region are left out)
    regions: dict[str, RegionPath] = field(default_factory=dict)
    #: node → position in a topological order of the forward graph
    order: dict[str, int] = field(default_factory=dict)
    #: node → bitset of the nodes before it (bit = position in ``order``)
    ancestors: dict[str, int] = field(default_factory=dict)
    #: the nodes in topological order (the inverse of ``order``)
    in_topological_order: list[str] = field(default_factory=list)
    _without_people: set[str] | None = field(default=None, init=False, repr=False)

    def path(self, node_id: str) -> str:
        return f"/nodes/{self.index[node_id]}"

    def link_path(self, source: str, target: str) -> str:
        return self.links[(source, target)][0]

    def describe(self, node_id: str) -> str:
        """``node `ceo` (approver)``: how messages name a node."""
        return f"node `{node_id}` ({self.nodes[node_id].type})"

    def is_before(self, earlier: str, later: str) -> bool:
        """Whether a forward path leads from ``earlier`` to ``later`` (sound graphs only)."""
        return bool(self.ancestors[later] >> self.order[earlier] & 1)

    def region(self, node_id: str) -> RegionPath:
        return self.regions.get(node_id, ())

    def without_people(self) -> set[str]:
        """The nodes some path from the start reaches without passing an approver or handler
        (the approvers and handlers at the end of such a path included; computed once)."""
        if self._without_people is None:
            assert self.start is not None
            found = {self.start}
            queue = deque(found)
            while queue:
                current = queue.popleft()
                if _is_person(self.nodes[current]):
                    continue
                for child in self.forward.successors(current):
                    if child not in found:
                        found.add(child)
                        queue.append(child)
            self._without_people = found
        return self._without_people

    def in_order(self, bits: int) -> Iterator[str]:
        """The nodes of a bitset, in topological order."""
        while bits:
            low = bits & -bits
            yield self.in_topological_order[low.bit_length() - 1]
            bits ^= low


def analyse(nodes: Sequence[Node]) -> tuple[FlowGraph, list[Issue]]:
    """Build the graph of ``nodes`` and check it; returns the graph and every issue found."""
    graph, issues = _build(nodes)
    issues += _terminal_issues(nodes, graph)
    if issues:
        return graph, issues
    issues += _flow_issues(graph)
    if issues:
        return graph, issues
    _order(graph)
    issues += _RegionCheck(graph).run()
    issues += _return_issues(graph)
    graph.sound = not issues
    return graph, issues


# -- building ------------------------------------------------------------------------------


def forward_links(node: Node, at: str) -> Iterator[Link]:
    """The forward links a node declares, each with its pointer (``at`` is the node's)."""
    if isinstance(node, ConditionNode):
        for k, branch in enumerate(node.branches):
            yield Link(node.id, branch.to, f"{at}/branches/{k}/to")
    elif isinstance(node, ParallelSplitNode):
        for k, target in enumerate(node.branches):
            yield Link(node.id, target, f"{at}/branches/{k}")
    elif not isinstance(node, EndNode) and node.next is not None:
        yield Link(node.id, node.next, f"{at}/next")


def _build(nodes: Sequence[Node]) -> tuple[FlowGraph, list[Issue]]:
    """The graph (first node of each id) and the issues of ids and links."""
    index: dict[str, int] = {}
    by_id: dict[str, Node] = {}
    issues = []
    for i, node in enumerate(nodes):
        first = index.setdefault(node.id, i)
        if first == i:
            by_id[node.id] = node
        else:
            issues.append(
                Issue(
                    f"/nodes/{i}/id",
                    "duplicate_node",
                    f"node id `{node.id}` is already used by /nodes/{first}; node ids must be "
                    "unique within a flow: rename one of them",
                )
            )
    forward: nx.DiGraph[str] = nx.DiGraph()
    forward.add_nodes_from(by_id)
    links: dict[tuple[str, str], list[str]] = {}
    returns: dict[str, list[str] | str] = {}
    graph = FlowGraph(by_id, index, forward, links, returns)
    for i, node in enumerate(nodes):
        at = f"/nodes/{i}"
        for link in forward_links(node, at):
            if link.target not in by_id:
                issues.append(_unknown_node(node.id, link.target, link.path, graph))
            elif index[node.id] == i:
                links.setdefault((link.source, link.target), []).append(link.path)
        if isinstance(node, ParallelSplitNode):
            issues += _repeated_branches(node, at)
        if isinstance(node, ApproverNode | HandlerNode) and node.returnable_to:
            if index[node.id] == i:
                returns[node.id] = node.returnable_to
            if isinstance(node.returnable_to, list):
                for k, target in enumerate(node.returnable_to):
                    if target not in by_id:
                        where = f"{at}/returnable_to/{k}"
                        issues.append(_unknown_node(node.id, target, where, graph))
    forward.add_edges_from(links)
    return graph, issues


def _repeated_branches(node: ParallelSplitNode, at: str) -> list[Issue]:
    issues = []
    seen: set[str] = set()
    for k, target in enumerate(node.branches):
        if target in seen:
            issues.append(
                Issue(
                    f"{at}/branches/{k}",
                    "duplicate_branch",
                    f"parallel split `{node.id}` starts `{target}` twice; each branch must "
                    "start at its own node: remove the repeated entry",
                )
            )
        seen.add(target)
    return issues


def _unknown_node(source: str, target: str, at: str, graph: FlowGraph) -> Issue:
    close = difflib.get_close_matches(target, list(graph.nodes), n=1)
    hint = f"did you mean `{close[0]}`?" if close else f"nodes: {_listed(graph.nodes)}"
    return Issue(
        at,
        "unknown_node",
        f"node `{source}` links to `{target}`, which is not a node of this flow; {hint}",
    )


def _terminal_issues(nodes: Sequence[Node], graph: FlowGraph) -> list[Issue]:
    starts = [i for i, n in enumerate(nodes) if isinstance(n, StartNode)]
    issues = []
    if not starts:
        issues.append(
            Issue(
                "/nodes",
                "no_start",
                'the flow has no start node; add one node {"type": "start"} and point its '
                "`next` at the first step",
            )
        )
    for i in starts[1:]:
        issues.append(
            Issue(
                pointer("nodes", i, "type"),
                "multiple_starts",
                f"node `{nodes[i].id}` is a second start node (the first is "
                f"`{nodes[starts[0]].id}`); a flow has exactly one start: change its type or "
                "remove it",
            )
        )
    if not any(isinstance(n, EndNode) for n in nodes):
        issues.append(
            Issue(
                "/nodes",
                "no_end",
                'the flow has no end node; add one {"type": "end", "outcome": "approved"} and '
                "point the last step at it",
            )
        )
    if starts:
        graph.start = nodes[starts[0]].id
    return issues


# -- reachability and cycles -------------------------------------------------------------------


def _flow_issues(graph: FlowGraph) -> list[Issue]:
    assert graph.start is not None
    forward, start = graph.forward, graph.start
    reached = nx.descendants(forward, start) | {start}
    issues = _unreachable_issues(graph, reached)
    issues += _cycle_issues(graph)
    ends = [n for n, node in graph.nodes.items() if isinstance(node, EndNode)]
    return issues + _dead_end_issues(graph, _reaching(forward, ends))


def _reaching(forward: nx.DiGraph[str], targets: Iterable[str]) -> set[str]:
    """The nodes from which some node of ``targets`` can be reached (``targets`` included)."""
    found = set(targets)
    queue = deque(found)
    while queue:
        for parent in forward.predecessors(queue.popleft()):
            if parent not in found:
                found.add(parent)
                queue.append(parent)
    return found


def _unreachable_issues(graph: FlowGraph, reached: set[str]) -> list[Issue]:
    """Nodes no path from the start leads to; those only reachable from them are not reported."""
    assert graph.start is not None
    lost = graph.forward.subgraph(n for n in graph.nodes if n not in reached)
    condensed = nx.condensation(lost)
    issues: list[tuple[int, Issue]] = []
    for component in condensed:
        if condensed.in_degree(component):
            continue
        first = min(condensed.nodes[component]["members"], key=graph.index.__getitem__)
        after = len(nx.descendants(lost, first) - {first})
        also = f" (nor can the {after} node(s) after it)" if after else ""
        message = (
            f"{graph.describe(first)} cannot be reached from the start node `{graph.start}`"
            f"{also}: no path of `next` links and branches leads to it; link it from an "
            "earlier node or remove it"
        )
        issues.append((graph.index[first], Issue(graph.path(first), "unreachable", message)))
    return [issue for _, issue in sorted(issues, key=lambda pair: pair[0])]


def _dead_end_issues(graph: FlowGraph, finishing: set[str]) -> list[Issue]:
    """Where paths stop short of an end: nodes without a successor, and loops without an exit.

    Nodes that only lead into those are not reported: fixing the cause fixes them.
    """
    stuck = graph.forward.subgraph(n for n in graph.nodes if n not in finishing)
    issues: list[tuple[int, Issue]] = []
    condensed = nx.condensation(stuck)
    for component in condensed:
        if condensed.out_degree(component):
            continue
        members = sorted(condensed.nodes[component]["members"], key=graph.index.__getitem__)
        first = members[0]
        if len(members) == 1 and not stuck.has_edge(first, first):
            cause = "it has no `next`; point `next` at the following step (or at an end node)"
        else:
            loop = ", ".join(f"`{m}`" for m in members)
            cause = (
                f"it loops through {loop} without a way to an end node; give the loop an exit "
                "towards an end node"
            )
        message = f"{graph.describe(first)} is a dead end: {cause}"
        issues.append((graph.index[first], Issue(graph.path(first), "dead_end", message)))
    return [issue for _, issue in sorted(issues, key=lambda pair: pair[0])]


def _cycle_issues(graph: FlowGraph) -> list[Issue]:
    forward = graph.forward
    if nx.is_directed_acyclic_graph(forward):
        return []
    issues = []
    components = [
        c
        for c in nx.strongly_connected_components(forward)
        if len(c) > 1 or forward.has_edge(next(iter(c)), next(iter(c)))
    ]
    for component in sorted(components, key=lambda c: min(graph.index[n] for n in c)):
        first = min(component, key=graph.index.__getitem__)
        cycle = nx.find_cycle(forward.subgraph(component), source=first)
        source, target = cycle[-1][0], cycle[-1][1]
        loop = " → ".join([*(u for u, _ in cycle), target])
        issues.append(
            Issue(
                graph.link_path(source, target),
                "cycle",
                f"node `{source}` links back to `{target}`, closing the loop {loop}; flows may "
                f"only go back through declared returns: remove this link and add `{target}` "
                f"to the `returnable_to` of an approver or handler in the loop",
            )
        )
    return issues


def _order(graph: FlowGraph) -> None:
    """Topological positions and ancestor bitsets of an acyclic forward graph."""
    forward = graph.forward
    order = list(nx.topological_sort(forward))
    graph.in_topological_order = order
    graph.order = {node_id: i for i, node_id in enumerate(order)}
    ancestors: dict[str, int] = {}
    for node_id in order:
        bits = 0
        for parent in forward.predecessors(node_id):
            bits |= ancestors[parent] | (1 << graph.order[parent])
        ancestors[node_id] = bits
    graph.ancestors = ancestors


# -- parallel regions --------------------------------------------------------------------------


class _RegionCheck:
    """Pairs parallel splits with joins and checks that each region is a closed block.

    A link that crosses into or out of a region is reported alone: the pairing
    problems it causes (joins shared or left without a split, branches that seem
    to merge) disappear once it is fixed, so they are not reported with it.
    """

    def __init__(self, graph: FlowGraph) -> None:
        self.graph = graph
        self.forward = graph.forward
        self.crossings: list[Issue] = []
        self.entered: set[str] = set()
        self.merges: list[tuple[str, Issue]] = []
        self.pairing: list[Issue] = []

    def run(self) -> list[Issue]:
        graph = self.graph
        splits = sorted(
            (n for n, node in graph.nodes.items() if isinstance(node, ParallelSplitNode)),
            key=graph.order.__getitem__,
        )
        joins = [n for n, node in graph.nodes.items() if isinstance(node, ParallelJoinNode)]
        if not splits and not joins:
            return []
        post_dominators = self._post_dominators()
        owners: dict[str, list[str]] = {j: [] for j in joins}
        claimed: set[str] = set()
        closing: dict[str, str] = {}
        for split in splits:
            join = post_dominators.get(split)
            if join is not None and join in owners:
                closing[split] = join
                owners[join].append(split)
            else:
                claimed |= self._diagnose(split)
        for split, join in closing.items():
            self._region(split, join, shared=len(owners[join]) > 1)
        for join in joins:
            self._join_issues(join, owners[join], claimed)
        graph.joins = {s: j for s, j in closing.items() if len(owners[j]) == 1}
        if self.crossings:
            merges = [issue for member, issue in self.merges if member not in self.entered]
            return self.crossings + merges
        return [issue for _, issue in self.merges] + self.pairing

    def _post_dominators(self) -> dict[str, str]:
        """The immediate post-dominator of every node (dominators of the reversed graph)."""
        backward = self.forward.reverse(copy=True)
        ends = (n for n, node in self.graph.nodes.items() if isinstance(node, EndNode))
        backward.add_edges_from((SINK, end) for end in ends)
        found: dict[str, str] = nx.immediate_dominators(backward, SINK)
        return found

    def _walk(self, heads: Iterable[str], stop: str) -> list[str]:
        """Nodes reachable from ``heads`` without passing ``stop`` (in visiting order)."""
        seen: set[str] = set()
        found = []
        queue = deque(h for h in heads if h != stop)
        while queue:
            node_id = queue.popleft()
            if node_id in seen:
                continue
            seen.add(node_id)
            found.append(node_id)
            queue.extend(s for s in self.forward.successors(node_id) if s != stop)
        return found

    def _branches(self, split: str, join: str) -> dict[str, int]:
        """Each node between ``split`` and ``join`` → its branch; reports branches that merge."""
        node = self.graph.nodes[split]
        assert isinstance(node, ParallelSplitNode)
        branch_of: dict[str, int] = {}
        for k, head in enumerate(node.branches):
            for member in self._walk([head], join):
                other = branch_of.setdefault(member, k)
                if other != k:
                    self._merge_issue(split, join, member, node.branches[other], head)
        return branch_of

    def _region(self, split: str, join: str, *, shared: bool) -> None:
        """Check the region of ``split`` closed by ``join`` and record every node's place."""
        graph = self.graph
        branch_of = self._branches(split, join)
        for member, k in branch_of.items():
            graph.regions[member] = (*graph.region(member), (split, k))
        inside = set(branch_of) | {split}
        entries = [*branch_of] if shared else [*branch_of, join]
        for member in entries:
            for parent in graph.forward.predecessors(member):
                if parent not in inside:
                    self._entry_issue(split, join, parent, member)

    def _merge_issue(self, split: str, join: str, member: str, first: str, second: str) -> None:
        issue = Issue(
            self.graph.path(member),
            "branches_merge",
            f"branches `{first}` and `{second}` of parallel split `{split}` both lead to "
            f"{self.graph.describe(member)} before their join `{join}`, so it would run "
            f"once per branch; parallel branches may only meet at their join: point them "
            f"at `{join}` (use a condition node to route within one branch)",
        )
        self.merges.append((member, issue))

    def _entry_issue(self, split: str, join: str, parent: str, member: str) -> None:
        self.entered.add(member)
        note = " (a join waits only for the branches of its own split)" if member == join else ""
        self.crossings.append(
            Issue(
                self.graph.link_path(parent, member),
                "enters_region",
                f"node `{parent}` links to `{member}`, inside the parallel region that starts "
                f"at split `{split}` and ends at join `{join}`{note}; a parallel region is "
                f"entered only through its split: link `{parent}` to `{split}` or to a node "
                f"after `{join}`",
            )
        )

    def _diagnose(self, split: str) -> set[str]:
        """Say why ``split`` has no join; returns the join its branches were meant to meet at."""
        graph = self.graph
        node = graph.nodes[split]
        assert isinstance(node, ParallelSplitNode)
        reach = {head: {head, *nx.descendants(self.forward, head)} for head in node.branches}
        candidates = [
            n
            for n, candidate in graph.nodes.items()
            if isinstance(candidate, ParallelJoinNode) and any(n in r for r in reach.values())
        ]
        heads = ", ".join(f"`{h}`" for h in node.branches)
        if not candidates:
            self.pairing.append(
                Issue(
                    graph.path(split),
                    "split_without_join",
                    f"parallel split `{split}` has no parallel join: its branches {heads} never "
                    "meet at a `parallel_join` node; add one and point the last node of every "
                    "branch at it",
                )
            )
            return set()
        join = min(
            candidates,
            key=lambda j: (-sum(j in r for r in reach.values()), graph.order[j]),
        )
        after = nx.descendants(self.forward, join)
        inside = [n for n in self._walk(node.branches, join) if n not in after]
        members = set(inside) | {split}
        crossings = len(self.crossings)
        for member in [split, *inside]:
            for target in self.forward.successors(member):
                if target != join and target not in members:
                    self.crossings.append(self._leaves(split, join, member, target))
            if isinstance(graph.nodes[member], EndNode):
                self.crossings.append(
                    Issue(
                        graph.path(member),
                        "leaves_region",
                        f"a branch of parallel split `{split}` ends at end node `{member}` "
                        f"without reaching the join `{join}`; every branch must reach the "
                        f"join: end the branch at `{join}` and decide the outcome after it",
                    )
                )
        merges = len(self.merges)
        if len(self.crossings) == crossings:
            self._branches(split, join)
        if len(self.crossings) == crossings and len(self.merges) == merges:
            self.pairing.append(
                Issue(
                    graph.path(split),
                    "split_without_join",
                    f"parallel split `{split}` is not closed by one parallel join: its "
                    f"branches {heads} do not all meet at `{join}`; point the last node of "
                    f"every branch at the same `parallel_join`",
                )
            )
        return {join}

    def _leaves(self, split: str, join: str, member: str, target: str) -> Issue:
        where = (
            f"parallel split `{split}` starts a branch at"
            if member == split
            else f"node `{member}` is in a branch of parallel split `{split}` but links to"
        )
        return Issue(
            self.graph.link_path(member, target),
            "leaves_region",
            f"{where} `{target}`, outside the region, without passing its join `{join}`; "
            f"every path from a parallel split must go through its join: link it to `{join}` "
            "or to a node before it",
        )

    def _join_issues(self, join: str, owners: list[str], claimed: set[str]) -> None:
        graph = self.graph
        if len(owners) > 1:
            names = " and ".join(f"`{s}`" for s in owners)
            self.pairing.append(
                Issue(
                    graph.path(join),
                    "shared_join",
                    f"parallel join `{join}` closes the parallel splits {names}; each split "
                    "needs its own join: add a join for the inner split where its branches "
                    "meet, and link it on to this one",
                )
            )
        elif not owners and join not in claimed:
            self.pairing.append(
                Issue(
                    graph.path(join),
                    "orphan_join",
                    f"parallel join `{join}` closes no parallel split (no split's branches all "
                    "meet here first); remove it and link its inputs to the next step (branches "
                    "of a condition meet by linking to the same node), or add the split it "
                    "belongs to",
                )
            )


# -- returns -----------------------------------------------------------------------------------


def _return_issues(graph: FlowGraph) -> list[Issue]:
    issues = []
    for node_id, declared in graph.declared_returns.items():
        if not isinstance(declared, list):
            continue
        at = graph.path(node_id)
        for k, target in enumerate(declared):
            problem = return_problem(graph, node_id, target)
            if problem:
                issues.append(
                    Issue(
                        at + pointer("returnable_to", k),
                        "invalid_return",
                        f"node `{node_id}` cannot return to `{target}`: {problem}",
                    )
                )
    return issues


def return_problem(graph: FlowGraph, node_id: str, target: str) -> str | None:
    """Why ``node_id`` cannot return to ``target`` (None when it can); sound graphs only."""
    target_type = graph.nodes[target].type
    if target_type not in RETURN_TARGET_TYPES:
        return (
            f"its type is `{target_type}`; returns go back to the start (the submitter), an "
            "approver or a handler"
        )
    if target == node_id or not graph.is_before(target, node_id):
        return (
            "it does not come before this node; returns go back to earlier steps (to move "
            "forward, use `next`)"
        )
    region, own = graph.region(target), graph.region(node_id)
    if own[: len(region)] != region:
        split, k = region[-1]
        return (
            f"it is inside branch {k + 1} of parallel split `{split}`, which this node is not "
            "in, so the other branches could never reach the join; return to a node before "
            f"`{split}` or in the same branch"
        )
    return None


def _is_person(node: Node) -> bool:
    return isinstance(node, ApproverNode | HandlerNode)


def _listed(names: Iterable[str]) -> str:
    names = list(names)
    shown = ", ".join(names[:_LISTED])
    return shown + (", …" if len(names) > _LISTED else "")


def earlier_targets(graph: FlowGraph, node_id: str) -> tuple[str, ...]:
    """Every start, approver and handler node ``node_id`` may return to, earliest first."""
    return tuple(
        target
        for target in graph.in_order(graph.ancestors[node_id])
        if return_problem(graph, node_id, target) is None
    )


def declared_targets(graph: FlowGraph, node_id: str) -> tuple[str, ...]:
    """The return targets of a node as declared (``"earlier"`` expanded)."""
    declared = graph.declared_returns.get(node_id, [])
    if isinstance(declared, str):
        return earlier_targets(graph, node_id)
    return tuple(dict.fromkeys(declared))


def approver_before(graph: FlowGraph, node_id: str) -> bool:
    """Whether every path from the start to ``node_id`` passes an approver or handler."""
    return node_id not in graph.without_people()

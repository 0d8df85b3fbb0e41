"""Graph checks of flows: every structural mistake is reported at its place, with the fix.

Each test breaks the contract-approval flow in one way and expects exactly the
issue that mistake causes (pointer and code) and a message that names the node.
"""

from __future__ import annotations

from typing import Any

from formloom.engine.flows import analyse, flow_kind
from formloom.engine.flows.model import FlowDoc
from tests.engine.test_flow_contract import (
    CONTEXT,
    approver,
    changed,
    label,
    messages,
    node,
    problems,
)

# Node positions in the contract flow.
START, CHECK, DIRECTOR, CEO, REVIEW, LEGAL, FINANCE, JOIN, CC, ACTION, END = range(11)


def extended(*extra: dict[str, Any], edit: Any = None) -> dict[str, Any]:
    """The contract flow with ``extra`` nodes appended and ``edit`` applied."""

    def change(nodes: dict[str, Any], raw: dict[str, Any]) -> None:
        raw["nodes"] += list(extra)
        if edit is not None:
            edit(nodes, raw)

    return changed(change)


# -- ids, links, start and end -------------------------------------------------------------


def test_node_ids_must_be_unique() -> None:
    raw = extended(approver("legal", "legal", next="review_join"))

    assert problems(raw) == [("/nodes/11/id", "duplicate_node")]
    assert "already used by /nodes/5" in messages(raw)["/nodes/11/id"]


def test_a_link_to_a_missing_node_suggests_the_closest_one() -> None:
    raw = changed(lambda nodes, _: nodes["legal"].update(next="review_jion"))

    assert problems(raw) == [(f"/nodes/{LEGAL}/next", "unknown_node")]
    assert messages(raw)[f"/nodes/{LEGAL}/next"] == (
        "node `legal` links to `review_jion`, which is not a node of this flow; "
        "did you mean `review_join`?"
    )


def test_branch_and_return_targets_must_exist_too() -> None:
    def edit(nodes: dict[str, Any], _: Any) -> None:
        nodes["amount_check"]["branches"][1]["to"] = "ceo_office"
        nodes["review"]["branches"][1] = "fnance"
        nodes["sales_director"]["returnable_to"] = ["begin"]

    assert problems(changed(edit)) == [
        (f"/nodes/{CHECK}/branches/1/to", "unknown_node"),
        (f"/nodes/{DIRECTOR}/returnable_to/0", "unknown_node"),
        (f"/nodes/{REVIEW}/branches/1", "unknown_node"),
    ]


def test_a_parallel_split_starts_each_branch_once() -> None:
    raw = changed(lambda nodes, _: nodes["review"].update(branches=["legal", "legal"]))

    assert ("/nodes/4/branches/1", "duplicate_branch") in problems(raw)


def test_exactly_one_start_and_at_least_one_end() -> None:
    no_start = changed(lambda nodes, _: nodes["start"].update(type="handler"))
    no_end = changed(lambda nodes, raw: raw["nodes"].remove(nodes["approved"]))
    two_starts = extended(node("again", "start", next="ceo"))

    assert ("/nodes", "no_start") in problems(no_start)
    assert problems(no_end) == [("/nodes", "no_end"), (f"/nodes/{ACTION}/next", "unknown_node")]
    assert problems(two_starts) == [("/nodes/11/type", "multiple_starts")]
    assert "a flow has exactly one start" in messages(two_starts)["/nodes/11/type"]


def test_an_end_node_has_no_next() -> None:
    raw = changed(lambda nodes, _: nodes["approved"].update(next="start"))

    assert problems(raw) == [(f"/nodes/{END}", "additionalProperties")]
    assert "'next' was unexpected" in messages(raw)[f"/nodes/{END}"]


# -- reachability and cycles ---------------------------------------------------------------


def test_an_unreachable_node_is_reported() -> None:
    raw = extended(approver("vp", "vp_sales", next="approved"))

    assert problems(raw) == [("/nodes/11", "unreachable")]
    assert messages(raw)["/nodes/11"] == (
        "node `vp` (approver) cannot be reached from the start node `start`: no path of "
        "`next` links and branches leads to it; link it from an earlier node or remove it"
    )


def test_a_node_without_next_is_a_dead_end_and_only_it_is_reported() -> None:
    raw = changed(lambda nodes, _: nodes["notify_owner"].pop("next"))

    assert problems(raw) == [(f"/nodes/{CC}", "dead_end"), (f"/nodes/{ACTION}", "unreachable")]
    assert messages(raw)[f"/nodes/{ACTION}"].startswith(
        "node `mark_approved` (action) cannot be reached from the start node `start` (nor can "
        "the 1 node(s) after it)"
    )
    assert messages(raw)[f"/nodes/{CC}"] == (
        "node `notify_owner` (cc) is a dead end: it has no `next`; point `next` at the "
        "following step (or at an end node)"
    )


def test_a_cycle_without_a_return_link_is_refused() -> None:
    raw = changed(lambda nodes, _: nodes["ceo"].update(next="amount_check"))

    assert problems(raw) == [(f"/nodes/{CEO}/next", "cycle")]
    message = messages(raw)[f"/nodes/{CEO}/next"]
    assert message.startswith(
        "node `ceo` links back to `amount_check`, closing the loop amount_check → ceo → "
        "amount_check"
    )
    assert "add `amount_check` to the `returnable_to`" in message


def test_a_loop_without_exit_is_also_a_dead_end() -> None:
    raw = extended(
        approver("loop_a", "legal", next="loop_b"),
        approver("loop_b", "legal", next="loop_a"),
        edit=lambda nodes, _: nodes["mark_approved"].update(next="loop_a"),
    )

    assert problems(raw) == [
        (f"/nodes/{END}", "unreachable"),
        ("/nodes/11", "dead_end"),
        ("/nodes/12/next", "cycle"),
    ]
    assert "it loops through `loop_a`, `loop_b`" in messages(raw)["/nodes/11"]


def test_declared_returns_are_not_cycles() -> None:
    def edit(nodes: dict[str, Any], _: Any) -> None:
        nodes["finance"]["returnable_to"] = ["start", "sales_director"]

    document = flow_kind.validate(changed(edit), CONTEXT)

    finance = document.node("finance")
    assert finance is not None and finance.type == "approver"
    assert finance.returnable_to == ["start", "sales_director"]


# -- condition nodes -----------------------------------------------------------------------


def test_a_condition_needs_a_default_branch() -> None:
    def edit(nodes: dict[str, Any], _: Any) -> None:
        nodes["amount_check"]["branches"][1] = {
            "condition": {"field": "amount", "op": "ge", "value": 100000},
            "to": "ceo",
        }

    raw = changed(edit)

    assert problems(raw) == [(f"/nodes/{CHECK}/branches", "no_default_branch")]
    assert 'mark one branch `"default": true`' in messages(raw)[f"/nodes/{CHECK}/branches"]


def test_a_condition_has_only_one_default_branch() -> None:
    def edit(nodes: dict[str, Any], _: Any) -> None:
        nodes["amount_check"]["branches"].append({"default": True, "to": "sales_director"})

    raw = changed(edit)

    assert problems(raw) == [(f"/nodes/{CHECK}/branches/2/default", "multiple_default_branches")]
    message = messages(raw)[f"/nodes/{CHECK}/branches/2/default"]
    assert message.startswith("condition node `amount_check` has more than one default branch")


def test_the_default_has_no_condition_and_the_others_have_one() -> None:
    def edit(nodes: dict[str, Any], _: Any) -> None:
        branches = nodes["amount_check"]["branches"]
        del branches[0]["condition"]
        branches[1]["condition"] = {"field": "amount", "op": "ge", "value": 1}

    assert problems(changed(edit)) == [
        (f"/nodes/{CHECK}/branches/0", "missing_condition"),
        (f"/nodes/{CHECK}/branches/1/condition", "default_with_condition"),
    ]


def test_branch_conditions_are_checked_against_the_entity() -> None:
    def edit(nodes: dict[str, Any], raw: dict[str, Any]) -> None:
        nodes["amount_check"]["branches"][0]["condition"] = {
            "and": [
                {"field": "amout", "op": "lt", "value": 100000},
                {"field": "status", "op": "eq", "value": "signed"},
            ]
        }
        raw["entry_condition"] = {"field": "title", "op": "gt", "value": "a"}

    raw = changed(edit)

    assert problems(raw) == [
        ("/entry_condition/op", "operator_not_allowed"),
        (f"/nodes/{CHECK}/branches/0/condition/and/0/field", "unknown_field"),
        (f"/nodes/{CHECK}/branches/0/condition/and/1/value", "unknown_choice"),
    ]
    found = messages(raw)
    assert found[f"/nodes/{CHECK}/branches/0/condition/and/0/field"].startswith(
        "node `amount_check`, branch 1: `amout` is not a field of `contract` "
        "(did you mean `amount`?)"
    )
    assert found["/entry_condition/op"].startswith("entry condition: field `title`")


# -- parallel regions ----------------------------------------------------------------------


def test_a_split_without_a_join_is_refused() -> None:
    def edit(nodes: dict[str, Any], raw: dict[str, Any]) -> None:
        nodes["legal"]["next"] = "notify_owner"
        nodes["finance"]["next"] = "notify_owner"
        raw["nodes"].remove(nodes["review_join"])

    raw = changed(edit)

    assert problems(raw) == [(f"/nodes/{REVIEW}", "split_without_join")]
    assert messages(raw)[f"/nodes/{REVIEW}"] == (
        "parallel split `review` has no parallel join: its branches `legal`, `finance` never "
        "meet at a `parallel_join` node; add one and point the last node of every branch at it"
    )


def test_a_branch_that_skips_the_join_leaves_the_region() -> None:
    raw = changed(lambda nodes, _: nodes["legal"].update(next="notify_owner"))

    assert problems(raw) == [(f"/nodes/{LEGAL}/next", "leaves_region")]
    message = messages(raw)[f"/nodes/{LEGAL}/next"]
    assert message.startswith(
        "node `legal` is in a branch of parallel split `review` but links to `notify_owner`, "
        "outside the region, without passing its join `review_join`"
    )
    assert "link it to `review_join`" in message


def test_a_branch_that_ends_the_flow_inside_the_region_is_refused() -> None:
    raw = extended(
        node("legal_says_no", "end", outcome="rejected"),
        edit=lambda nodes, _: nodes["legal"].update(next="legal_says_no"),
    )

    assert problems(raw) == [("/nodes/11", "leaves_region")]
    assert "ends at end node `legal_says_no`" in messages(raw)["/nodes/11"]


def test_a_link_from_outside_into_a_region_crosses_it() -> None:
    def edit(nodes: dict[str, Any], _: Any) -> None:
        nodes["amount_check"]["branches"].insert(
            1,
            {
                "label": label("超大合同", "Huge contracts"),
                "condition": {"field": "amount", "op": "gt", "value": 50_000_000},
                "to": "legal",
            },
        )

    raw = changed(edit)

    assert problems(raw) == [(f"/nodes/{CHECK}/branches/1/to", "enters_region")]
    assert messages(raw)[f"/nodes/{CHECK}/branches/1/to"] == (
        "node `amount_check` links to `legal`, inside the parallel region that starts at split "
        "`review` and ends at join `review_join`; a parallel region is entered only through "
        "its split: link `amount_check` to `review` or to a node after `review_join`"
    )


def test_a_link_from_one_region_into_a_sibling_region_is_reported_once() -> None:
    second = [
        node("sign", "parallel_split", branches=["stamp", "archive"]),
        approver("stamp", "legal", next="sign_join"),
        approver("archive", "finance", next="sign_join"),
        node("sign_join", "parallel_join", next="notify_owner"),
    ]

    def edit(nodes: dict[str, Any], _: Any) -> None:
        nodes["review_join"]["next"] = "sign"
        nodes["legal"]["next"] = "stamp"

    raw = extended(*second, edit=edit)

    assert problems(raw) == [(f"/nodes/{LEGAL}/next", "enters_region")]
    assert (
        "inside the parallel region that starts at split `sign`"
        in messages(raw)[f"/nodes/{LEGAL}/next"]
    )


def test_parallel_branches_may_not_merge_before_their_join() -> None:
    def edit(nodes: dict[str, Any], raw: dict[str, Any]) -> None:
        nodes["review"]["branches"] = ["legal", "finance", "tax"]
        nodes["legal"]["next"] = "filing"
        nodes["finance"]["next"] = "filing"
        raw["nodes"] += [
            approver("tax", "finance", next="review_join"),
            node(
                "filing",
                "handler",
                assignees=[{"type": "role", "role": "legal"}],
                next="review_join",
            ),
        ]

    raw = changed(edit)

    assert problems(raw) == [("/nodes/12", "branches_merge")]
    assert messages(raw)["/nodes/12"].startswith(
        "branches `legal` and `finance` of parallel split `review` both lead to node `filing` "
        "(handler) before their join `review_join`, so it would run once per branch"
    )


def test_branches_that_merge_instead_of_joining_are_reported_as_a_merge() -> None:
    def edit(nodes: dict[str, Any], raw: dict[str, Any]) -> None:
        nodes["legal"]["next"] = "filing"
        nodes["finance"]["next"] = "filing"
        raw["nodes"].append(
            node("filing", "handler", assignees=[{"type": "submitter"}], next="review_join")
        )

    assert problems(changed(edit)) == [("/nodes/11", "branches_merge")]


def test_nested_splits_need_their_own_joins() -> None:
    def edit(nodes: dict[str, Any], raw: dict[str, Any]) -> None:
        nodes["review"]["branches"] = ["legal", "money"]
        raw["nodes"] += [
            node("money", "parallel_split", branches=["finance", "tax"]),
            approver("tax", "finance", next="review_join"),
        ]

    raw = changed(edit)

    assert problems(raw) == [(f"/nodes/{JOIN}", "shared_join")]
    assert "closes the parallel splits `review` and `money`" in messages(raw)[f"/nodes/{JOIN}"]


def test_a_join_without_a_split_is_refused() -> None:
    def edit(nodes: dict[str, Any], raw: dict[str, Any]) -> None:
        nodes["sales_director"]["next"] = "merge"
        nodes["ceo"]["next"] = "merge"
        raw["nodes"].append(node("merge", "parallel_join", next="review"))

    raw = changed(edit)

    assert problems(raw) == [("/nodes/11", "orphan_join")]
    assert "branches of a condition meet by linking to the same node" in messages(raw)["/nodes/11"]


# -- returns -------------------------------------------------------------------------------


def test_returns_go_back_to_earlier_people_steps_only() -> None:
    def edit(nodes: dict[str, Any], raw: dict[str, Any]) -> None:
        nodes["sales_director"]["returnable_to"] = ["ceo", "amount_check", "sales_director"]
        nodes["review_join"]["next"] = "final"
        raw["nodes"].append(approver("final", "ceo", returnable_to=["legal"], next="notify_owner"))

    raw = changed(edit)

    assert problems(raw) == [
        (f"/nodes/{DIRECTOR}/returnable_to/0", "invalid_return"),
        (f"/nodes/{DIRECTOR}/returnable_to/1", "invalid_return"),
        (f"/nodes/{DIRECTOR}/returnable_to/2", "invalid_return"),
        ("/nodes/11/returnable_to/0", "invalid_return"),
    ]
    found = messages(raw)
    assert "does not come before this node" in found[f"/nodes/{DIRECTOR}/returnable_to/0"]
    assert "its type is `condition`" in found[f"/nodes/{DIRECTOR}/returnable_to/1"]
    assert found["/nodes/11/returnable_to/0"].startswith(
        "node `final` cannot return to `legal`: it is inside branch 1 of parallel split "
        "`review`, which this node is not in"
    )


def test_a_node_chosen_by_the_previous_approver_needs_one_on_every_path() -> None:
    def edit(nodes: dict[str, Any], _: Any) -> None:
        nodes["sales_director"]["assignees"] = [{"type": "previous_approver_choice"}]
        nodes["finance"]["assignees"] = [{"type": "previous_approver_choice", "multiple": True}]

    raw = changed(edit)

    assert problems(raw) == [(f"/nodes/{DIRECTOR}/assignees/0", "no_previous_approver")]


# -- size ----------------------------------------------------------------------------------


def test_a_long_flow_is_checked_without_recursion_limits() -> None:
    steps = [
        approver(f"step_{i}", "legal", next=f"step_{i + 1}" if i < 1899 else "done")
        for i in range(1900)
    ]
    nodes = [node("start", "start", next="step_0"), *steps, node("done", "end", outcome="approved")]
    document = FlowDoc.model_validate(
        {"name": "long", "label": label("长", "Long"), "entity": "contract", "nodes": nodes}
    )

    graph, issues = analyse(document.nodes)

    assert issues == []
    assert graph.sound
    assert graph.is_before("step_0", "step_1899")

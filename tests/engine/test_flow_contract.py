"""The contract-approval flow: it validates, and the runtime's questions get the right answers.

Amount < 100,000 → the sales director; otherwise the CEO; then legal and
finance review in parallel; the account manager gets a copy; the contract is
marked approved and finance is told. Pure tests: no database.

The builders here are shared by the other ``test_flow_*`` modules.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from formloom.engine.entities import EntityDoc
from formloom.engine.errors import DocumentInvalid
from formloom.engine.flows import (
    RESOLUTION_ORDER,
    CompiledFlow,
    FlowDoc,
    UnknownNode,
    applies_to,
    compile_flow,
    flow_kind,
    join_of,
    next_nodes,
    node_policies,
    return_targets,
)
from formloom.engine.meta import CheckContext, document_kinds
from formloom.engine.records.compiled import compile_entity

LABEL = {"zh": "步骤", "en": "Step"}
ROLES = ("sales_director", "ceo", "legal", "finance", "vp_sales")


def label(zh: str, en: str) -> dict[str, str]:
    return {"zh": zh, "en": en}


def field(name: str, type_: str = "text", **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": label(name, name), "type": type_, **extra}


CONTRACT_ENTITY: dict[str, Any] = {
    "name": "contract",
    "label": label("合同", "Contract"),
    "fields": [
        field("title"),
        field("amount", "currency"),
        field("signed_on", "date"),
        field("account_manager", "user"),
        field("legal_reviewer", "user"),
        field(
            "status",
            "single_select",
            required=True,
            options={
                "choices": [
                    {"value": v, "label": {"en": v}} for v in ("draft", "approved", "rejected")
                ]
            },
        ),
        field("legal_notes", "long_text"),
        field("quantity", "integer"),
        field("total", "formula", options={"expression": "amount * 2.0", "result": "decimal"}),
    ],
}
CONTEXT = CheckContext(
    published={
        "entity": {"contract": CONTRACT_ENTITY},
        "role": {name: {"name": name, "label": LABEL} for name in ROLES},
    }
)
USERS = CheckContext(
    published=CONTEXT.published, pending=CONTEXT.pending, users=frozenset({1, 2, 3})
)


def node(id_: str, type_: str, **extra: Any) -> dict[str, Any]:
    return {"id": id_, "type": type_, "label": label(id_, id_), **extra}


def approver(id_: str, role: str, **extra: Any) -> dict[str, Any]:
    return node(id_, "approver", assignees=[{"type": "role", "role": role}], **extra)


def contract_flow() -> dict[str, Any]:
    """The contract-approval flow of the CRM template, as a designer would publish it."""
    return {
        "name": "contract_approval",
        "label": label("合同审批", "Contract approval"),
        "description": "Contracts by amount; legal and finance review in parallel.",
        "entity": "contract",
        "entry_condition": {"field": "status", "op": "eq", "value": "draft"},
        "start_by": ["manual", "api", "rule"],
        "withdraw": "before_decision",
        "admin": 1,
        "policies": {
            "empty_approver": {"action": "assign_to_admin"},
            "approver_is_submitter": "skip",
            "repeated_approver": "once_for_all",
        },
        "nodes": [
            node("start", "start", next="amount_check"),
            node(
                "amount_check",
                "condition",
                branches=[
                    {
                        "label": label("金额小于 10 万", "Amount < 100,000"),
                        "condition": {"field": "amount", "op": "lt", "value": 100000},
                        "to": "sales_director",
                    },
                    {
                        "label": label("其他情况", "Otherwise (≥ 100,000)"),
                        "default": True,
                        "to": "ceo",
                    },
                ],
            ),
            approver(
                "sales_director",
                "sales_director",
                mode="or_sign",
                returnable_to=["start"],
                timeouts=[
                    {"after": "PT24H", "action": "remind", "repeat_every": "PT12H"},
                    {"after": "P3D", "action": "escalate", "escalate_to": {"type": "manager"}},
                ],
                next="review",
            ),
            approver(
                "ceo",
                "ceo",
                comment_required_on_reject=True,
                approver_is_submitter="manager",
                returnable_to="earlier",
                timeouts=[{"after": "P5D", "action": "auto_reject"}],
                next="review",
            ),
            node("review", "parallel_split", branches=["legal", "finance"]),
            node(
                "legal",
                "approver",
                assignees=[
                    {"type": "record_field", "field": "legal_reviewer"},
                    {"type": "role", "role": "legal"},
                ],
                mode="sequential",
                field_permissions={"legal_notes": "editable", "amount": "read_only"},
                empty_approver={"action": "auto_approve"},
                returnable_to="earlier",
                next="review_join",
            ),
            approver(
                "finance",
                "finance",
                mode="countersign",
                percentage=60,
                field_permissions={"legal_notes": "hidden"},
                next="review_join",
            ),
            node("review_join", "parallel_join", next="notify_owner"),
            node(
                "notify_owner",
                "cc",
                recipients=[
                    {"type": "record_field", "field": "account_manager"},
                    {"type": "role", "role": "finance"},
                ],
                next="mark_approved",
            ),
            node(
                "mark_approved",
                "action",
                actions=[
                    {"type": "set_fields", "values": {"status": "approved"}},
                    {
                        "type": "notify",
                        "to": [{"type": "role", "role": "finance"}],
                        "message": label("合同已审批通过", "The contract is approved"),
                        "channels": ["in_app", "dingtalk"],
                    },
                    {"type": "webhook", "url": "https://erp.example.com/hooks/contracts"},
                ],
                next="approved",
            ),
            node("approved", "end", outcome="approved"),
        ],
    }


def nodes_of(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in raw["nodes"]}


def changed(edit: Any) -> dict[str, Any]:
    """The contract flow after ``edit(nodes_by_id, flow)`` changed a copy of it."""
    raw = copy.deepcopy(contract_flow())
    edit(nodes_of(raw), raw)
    return raw


def problems(raw: Any, context: CheckContext = CONTEXT) -> list[tuple[str, str]]:
    """(path, code) of every issue of ``raw``; fails when the document is valid."""
    with pytest.raises(DocumentInvalid) as exc:
        flow_kind.validate(raw, context)
    return [(i.path, i.code) for i in exc.value.issues]


def messages(raw: Any, context: CheckContext = CONTEXT) -> dict[str, str]:
    with pytest.raises(DocumentInvalid) as exc:
        flow_kind.validate(raw, context)
    return {i.path: i.message for i in exc.value.issues}


def compiled(raw: dict[str, Any] | None = None) -> CompiledFlow:
    document = flow_kind.validate(raw or contract_flow(), CONTEXT)
    return compile_flow(document, compile_entity(EntityDoc.model_validate(CONTRACT_ENTITY)))


# -- the document --------------------------------------------------------------------------


def test_the_contract_flow_is_valid_and_parses_into_typed_nodes() -> None:
    document = flow_kind.validate(contract_flow(), USERS)

    assert isinstance(document, FlowDoc)
    assert document.schema_version == 1
    assert [n.type for n in document.nodes][:3] == ["start", "condition", "approver"]
    ceo = document.node("ceo")
    assert ceo is not None and ceo.type == "approver"
    assert ceo.returnable_to == "earlier"
    assert ceo.mode == "countersign"  # the default: everyone listed approves
    finance = document.node("finance")
    assert finance is not None and finance.type == "approver" and finance.percentage == 60


def test_defaults_fill_what_a_minimal_flow_leaves_out() -> None:
    raw = {
        "name": "minimal",
        "label": label("最简", "Minimal"),
        "entity": "contract",
        "nodes": [
            node("start", "start", next="boss"),
            node("boss", "approver", assignees=[{"type": "manager"}], next="done"),
            node("done", "end", outcome="approved"),
        ],
    }

    document = flow_kind.validate(raw, CONTEXT)

    assert document.start_by == ["manual", "api"]
    assert document.withdraw == "before_decision"
    assert document.admin is None
    assert document.policies.empty_approver.action == "assign_to_admin"
    assert document.policies.approver_is_submitter == "approve_as_normal"
    assert document.policies.repeated_approver == "every_time"


def test_a_flow_body_round_trips_through_its_dump() -> None:
    document = flow_kind.validate(contract_flow(), CONTEXT)

    body = document.model_dump(mode="json", exclude_none=True)

    assert flow_kind.validate(body, CONTEXT) == document


def test_the_kind_is_registered() -> None:
    assert document_kinds.get("flow") is flow_kind


def test_roles_and_entities_of_the_same_batch_count() -> None:
    context = CheckContext(
        pending={
            "entity": {"contract": CONTRACT_ENTITY},
            "role": {name: {"name": name, "label": LABEL} for name in ROLES},
        }
    )

    assert flow_kind.validate(contract_flow(), context).name == "contract_approval"


# -- the runtime's questions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (Decimal("99999.99"), ("sales_director",)),
        (100000, ("ceo",)),
        ("2500000", ("ceo",)),
        (None, ("ceo",)),  # an empty amount matches no condition: the default branch
    ],
)
def test_the_start_routes_by_amount(amount: Any, expected: tuple[str, ...]) -> None:
    flow = compiled()

    assert next_nodes(flow, "start", {"amount": amount}) == expected
    assert next_nodes(flow, "amount_check", {"amount": amount}) == expected


def test_approval_fans_out_to_the_parallel_reviews_and_they_meet_at_the_join() -> None:
    flow = compiled()

    assert next_nodes(flow, "sales_director", {}) == ("legal", "finance")
    assert next_nodes(flow, "review", {}) == ("legal", "finance")
    assert next_nodes(flow, "legal", {}) == ("review_join",)
    assert next_nodes(flow, "finance", {}) == ("review_join",)
    assert join_of(flow, "review") == "review_join"
    assert next_nodes(flow, "review_join", {}) == ("notify_owner",)
    assert next_nodes(flow, "mark_approved", {}) == ("approved",)
    assert next_nodes(flow, "approved", {}) == ()


def test_nested_gateways_are_passed_through_in_order() -> None:
    def edit(nodes: dict[str, Any], raw: dict[str, Any]) -> None:
        nodes["legal"]["next"] = "legal_check"
        raw["nodes"] += [
            node(
                "legal_check",
                "condition",
                branches=[
                    {"condition": {"field": "quantity", "op": "gt", "value": 10}, "to": "bulk"},
                    {"default": True, "to": "review_join"},
                ],
            ),
            node("bulk", "parallel_split", branches=["bulk_a", "bulk_b"]),
            approver("bulk_a", "legal", next="bulk_join"),
            approver("bulk_b", "finance", next="bulk_join"),
            node("bulk_join", "parallel_join", next="review_join"),
        ]

    flow = compiled(changed(edit))

    assert next_nodes(flow, "legal", {"quantity": 50}) == ("bulk_a", "bulk_b")
    assert next_nodes(flow, "legal", {"quantity": 5}) == ("review_join",)
    assert join_of(flow, "bulk") == "bulk_join"
    assert flow.graph.region("bulk_a") == (("review", 0), ("bulk", 0))


def test_relative_dates_in_branches_are_resolved_when_asked() -> None:
    def edit(nodes: dict[str, Any], raw: dict[str, Any]) -> None:
        nodes["amount_check"]["branches"][0]["condition"] = {
            "field": "signed_on",
            "op": "eq",
            "value": {"relative": "this_month"},
        }

    flow = compiled(changed(edit))
    record = {"signed_on": date(2026, 3, 10)}

    march = datetime(2026, 3, 20, tzinfo=UTC)
    april = datetime(2026, 4, 20, tzinfo=UTC)
    assert next_nodes(flow, "start", record, now=march) == ("sales_director",)
    assert next_nodes(flow, "start", record, now=april) == ("ceo",)


def test_return_targets_are_the_declared_earlier_steps() -> None:
    flow = compiled()

    assert return_targets(flow, "sales_director") == ("start",)
    assert return_targets(flow, "ceo") == ("start",)
    # inside a parallel branch, "earlier" reaches back before the split, not into siblings
    assert return_targets(flow, "legal") == ("start", "sales_director", "ceo")
    assert return_targets(flow, "finance") == ()
    assert return_targets(flow, "notify_owner") == ()


def test_the_entry_condition_decides_whether_the_flow_applies() -> None:
    flow = compiled()

    assert applies_to(flow, {"status": "draft"})
    assert not applies_to(flow, {"status": "approved"})
    without = contract_flow()
    del without["entry_condition"]
    assert applies_to(compiled(without), {"status": "approved"})


def test_node_policies_fill_in_the_flow_defaults() -> None:
    flow = compiled()

    ceo = node_policies(flow, "ceo")
    legal = node_policies(flow, "legal")

    assert (ceo.approver_is_submitter, ceo.repeated_approver) == ("manager", "once_for_all")
    assert ceo.empty_approver.action == "assign_to_admin"
    assert legal.empty_approver.action == "auto_approve"
    assert legal.approver_is_submitter == "skip"
    assert RESOLUTION_ORDER == (
        "auto_decision",
        "empty_approver",
        "approver_is_submitter",
        "repeated_approver",
    )


def test_questions_about_unknown_or_wrong_nodes_fail_loudly() -> None:
    flow = compiled()

    with pytest.raises(UnknownNode) as unknown:
        next_nodes(flow, "leagl", {})
    with pytest.raises(UnknownNode) as not_a_split:
        join_of(flow, "legal")
    with pytest.raises(UnknownNode) as no_policies:
        node_policies(flow, "review")

    assert "has no node `leagl` (did you mean `legal`?)" in str(unknown.value)
    assert "is not a parallel split (its type is `approver`)" in str(not_a_split.value)
    assert "only approver and handler nodes have them" in str(no_policies.value)


def test_compile_flow_refuses_a_flow_whose_graph_is_broken() -> None:
    raw = changed(lambda nodes, _: nodes["legal"].update(next="notify_owner"))
    document = FlowDoc.model_validate(raw)
    entity = compile_entity(EntityDoc.model_validate(CONTRACT_ENTITY))

    with pytest.raises(DocumentInvalid) as exc:
        compile_flow(document, entity)

    assert [i.code for i in exc.value.issues] == ["leaves_region"]


# The two orders that meet the import cycle kind registry → flows → entities → kind registry.
@pytest.mark.parametrize("first", ["formloom.engine.flows", "formloom.engine.entities"])
def test_the_kind_registers_whichever_module_is_imported_first(first: str) -> None:
    code = (
        f"import {first}; from formloom.engine.meta import document_kinds; "
        "print(' '.join(document_kinds.names()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert "flow" in result.stdout.split()

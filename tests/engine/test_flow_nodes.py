"""Node checks of flows: people, fields, policies and timeouts against the environment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from formloom.engine.flows import DurationInvalid, flow_kind, parse_duration
from formloom.engine.meta import CheckContext
from tests.engine.test_flow_contract import (
    CONTEXT,
    USERS,
    changed,
    contract_flow,
    messages,
    problems,
)

# Node positions in the contract flow.
START, CHECK, DIRECTOR, CEO, REVIEW, LEGAL, FINANCE, JOIN, CC, ACTION, END = range(11)


def assignees(node_id: str, *sources: dict[str, Any]) -> dict[str, Any]:
    return changed(lambda nodes, _: nodes[node_id].update(assignees=list(sources)))


# -- the entity ----------------------------------------------------------------------------


def test_an_unknown_entity_suggests_the_closest_one() -> None:
    raw = {**contract_flow(), "entity": "contrat"}

    assert problems(raw) == [("/entity", "unknown_entity")]
    assert messages(raw)["/entity"].startswith(
        "unknown entity `contrat` (did you mean `contract`?); a flow approves the records of "
        "an entity published in this environment"
    )


def test_without_its_entity_a_flow_still_gets_its_graph_checked() -> None:
    raw = {**contract_flow(), "entity": "invoice"}
    raw["nodes"][LEGAL]["next"] = "notify_owner"

    assert problems(raw) == [("/entity", "unknown_entity"), ("/nodes/5/next", "leaves_region")]
    assert "; entities: contract;" in messages(raw, CONTEXT)["/entity"]


# -- people --------------------------------------------------------------------------------


def test_an_unknown_role_suggests_the_closest_one() -> None:
    raw = assignees("ceo", {"type": "role", "role": "chief_exec"}, {"type": "role", "role": "cfo"})

    assert problems(raw) == [
        (f"/nodes/{CEO}/assignees/0/role", "unknown_role"),
        (f"/nodes/{CEO}/assignees/1/role", "unknown_role"),
    ]
    found = messages(raw)
    assert found[f"/nodes/{CEO}/assignees/1/role"] == (
        "node `ceo`: role `cfo` does not exist (did you mean `ceo`?); publish the role first "
        "(or in the same batch) or fix the name"
    )
    assert (
        "; roles: ceo, finance, legal, sales_director, vp_sales;"
        in (found[f"/nodes/{CEO}/assignees/0/role"])
    )


def test_roles_are_checked_wherever_a_node_names_one() -> None:
    def edit(nodes: dict[str, Any], _: Any) -> None:
        nodes["ceo"]["assignees"] = [
            {"type": "manager_chain", "up_to_role": "vp_sale"},
            {"type": "submitter_choice", "among": {"roles": ["legl"], "users": [1]}},
        ]
        nodes["notify_owner"]["recipients"] = [{"type": "role", "role": "finanse"}]
        nodes["mark_approved"]["actions"][1]["to"] = [{"type": "role", "role": "ceoo"}]

    assert problems(changed(edit)) == [
        (f"/nodes/{CEO}/assignees/0/up_to_role", "unknown_role"),
        (f"/nodes/{CEO}/assignees/1/among/roles/0", "unknown_role"),
        (f"/nodes/{CC}/recipients/0/role", "unknown_role"),
        (f"/nodes/{ACTION}/actions/1/to/0/role", "unknown_role"),
    ]


def test_users_are_checked_only_when_the_context_knows_them() -> None:
    def edit(nodes: dict[str, Any], raw: dict[str, Any]) -> None:
        raw["admin"] = 99
        raw["policies"]["empty_approver"] = {"action": "assign_to_user", "user": 98}
        nodes["ceo"]["assignees"] = [{"type": "users", "users": [1, 97]}]
        nodes["ceo"]["timeouts"] = [
            {"after": "P2D", "action": "escalate", "escalate_to": {"type": "user", "user": 96}}
        ]

    raw = changed(edit)

    assert flow_kind.validate(raw, CONTEXT).admin == 99
    assert problems(raw, USERS) == [
        ("/admin", "unknown_user"),
        (f"/nodes/{CEO}/assignees/0/users", "unknown_user"),
        (f"/nodes/{CEO}/timeouts/0/escalate_to/user", "unknown_user"),
        ("/policies/empty_approver/user", "unknown_user"),
    ]
    assert messages(raw, USERS)["/admin"] == (
        "the flow admin: user 99 does not exist in this workspace; choose an existing user, or "
        "name a role so that the flow works in every environment"
    )


def test_record_field_approvers_need_a_user_field() -> None:
    raw = assignees(
        "ceo",
        {"type": "record_field", "field": "account_manger"},
        {"type": "record_field", "field": "amount"},
        {"type": "record_field", "field": "owner_id"},
    )

    assert problems(raw) == [
        (f"/nodes/{CEO}/assignees/0/field", "unknown_field"),
        (f"/nodes/{CEO}/assignees/1/field", "not_a_user_field"),
    ]
    found = messages(raw)
    assert found[f"/nodes/{CEO}/assignees/0/field"] == (
        "node `ceo`: entity `contract` has no field `account_manger` "
        "(did you mean `account_manager`?)"
    )
    assert found[f"/nodes/{CEO}/assignees/1/field"] == (
        "node `ceo`: field `amount` of `contract` is a `currency` field, but people are named "
        "by `user` fields; use one of: account_manager, legal_reviewer, owner_id, created_by"
    )


def test_a_manager_chain_climbs_to_a_level_or_a_role() -> None:
    both = assignees("ceo", {"type": "manager_chain", "up_to_level": 3, "up_to_role": "ceo"})
    neither = assignees("ceo", {"type": "manager_chain"})
    fine = assignees("ceo", {"type": "manager_chain", "up_to_level": 3})

    assert problems(both) == [(f"/nodes/{CEO}/assignees/0", "invalid_assignee")]
    assert problems(neither) == [(f"/nodes/{CEO}/assignees/0", "invalid_assignee")]
    assert flow_kind.validate(fine, CONTEXT).name == "contract_approval"


def test_a_step_needs_assignees_unless_it_decides_alone() -> None:
    raw = assignees("ceo")
    switched_off = changed(
        lambda nodes, _: nodes["ceo"].update(assignees=[], auto_decision="auto_approve")
    )

    assert problems(raw) == [(f"/nodes/{CEO}/assignees", "no_assignees")]
    assert flow_kind.validate(switched_off, CONTEXT).name == "contract_approval"


def test_a_percentage_goes_with_countersign_only() -> None:
    raw = changed(lambda nodes, _: nodes["finance"].update(mode="or_sign"))

    assert problems(raw) == [(f"/nodes/{FINANCE}/percentage", "percentage_without_countersign")]
    assert "set `mode` to `countersign`" in messages(raw)[f"/nodes/{FINANCE}/percentage"]


# -- policies ------------------------------------------------------------------------------


def test_the_empty_approver_policy_names_a_user_only_to_assign_to_them() -> None:
    def edit(nodes: dict[str, Any], raw: dict[str, Any]) -> None:
        raw["policies"]["empty_approver"] = {"action": "assign_to_user"}
        nodes["ceo"]["empty_approver"] = {"action": "auto_approve", "user": 2}

    raw = changed(edit)

    assert problems(raw) == [
        (f"/nodes/{CEO}/empty_approver/user", "invalid_policy"),
        ("/policies/empty_approver", "invalid_policy"),
    ]
    assert messages(raw)["/policies/empty_approver"] == (
        "the flow's policies: `assign_to_user` hands the task to a user; name them in `user`"
    )


def test_handlers_cannot_reject() -> None:
    def edit(nodes: dict[str, Any], _: Any) -> None:
        nodes["legal"]["type"] = "handler"
        nodes["legal"]["empty_approver"] = {"action": "auto_reject"}
        nodes["legal"]["timeouts"] = [{"after": "P1D", "action": "auto_reject"}]

    raw = changed(edit)

    assert problems(raw) == [
        (f"/nodes/{LEGAL}/empty_approver/action", "handler_cannot_reject"),
        (f"/nodes/{LEGAL}/timeouts/0/action", "handler_cannot_reject"),
    ]
    assert messages(raw)[f"/nodes/{LEGAL}/timeouts/0/action"].startswith(
        "node `legal` is a handler (办理人): handlers act but do not decide"
    )


def test_a_handler_takes_no_approver_only_keys() -> None:
    raw = changed(
        lambda nodes, _: nodes["finance"].update(type="handler", comment_required_on_reject=True)
    )

    assert (f"/nodes/{FINANCE}", "additionalProperties") in problems(raw)


# -- fields --------------------------------------------------------------------------------


def test_field_permissions_name_fields_of_the_entity() -> None:
    def edit(nodes: dict[str, Any], _: Any) -> None:
        nodes["legal"]["field_permissions"] = {
            "legal_note": "editable",
            "total": "editable",
            "amount": "hidden",
        }

    raw = changed(edit)

    assert problems(raw) == [
        (f"/nodes/{LEGAL}/field_permissions/legal_note", "unknown_field"),
        (f"/nodes/{LEGAL}/field_permissions/total", "not_editable"),
    ]
    assert (
        "(did you mean `legal_notes`?)"
        in messages(raw)[f"/nodes/{LEGAL}/field_permissions/legal_note"]
    )


def test_an_unknown_field_mode_suggests_the_closest_one() -> None:
    raw = changed(lambda nodes, _: nodes["legal"].update(field_permissions={"amount": "hiden"}))

    assert problems(raw) == [(f"/nodes/{LEGAL}/field_permissions/amount", "enum")]
    assert "did you mean `hidden`?" in messages(raw)[f"/nodes/{LEGAL}/field_permissions/amount"]


def test_set_fields_values_fit_their_fields() -> None:
    def edit(nodes: dict[str, Any], _: Any) -> None:
        nodes["mark_approved"]["actions"][0]["values"] = {
            "status": "done",
            "quantity": "many",
            "total": 5,
            "stauts": "approved",
            "title": None,
            "signed_on": "2026-03-01",
        }

    raw = changed(edit)
    at = f"/nodes/{ACTION}/actions/0/values"

    assert problems(raw) == [
        (f"{at}/quantity", "type"),
        (f"{at}/status", "unknown_choice"),
        (f"{at}/stauts", "unknown_field"),
        (f"{at}/total", "not_settable"),
    ]
    assert messages(raw)[f"{at}/status"].startswith("node `mark_approved`: field `status`: ")


def test_set_fields_cannot_clear_a_required_field() -> None:
    raw = changed(
        lambda nodes, _: nodes["mark_approved"]["actions"][0].update(values={"status": None})
    )

    assert problems(raw) == [(f"/nodes/{ACTION}/actions/0/values/status", "required_field")]


# -- timeouts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("48h", "`48h` is not an ISO-8601 duration; write e.g. `PT30M`"),
        ("P1M", "months and years vary in length: count days"),
        ("PT30S", "`PT30S` is shorter than a minute; timeouts last from 1 minute to 365 days"),
        ("P400D", "`P400D` is 400 days long"),
        ("PT", "`PT` is not an ISO-8601 duration"),
    ],
)
def test_a_bad_duration_says_how_to_write_one(text: str, hint: str) -> None:
    raw = changed(lambda nodes, _: nodes["sales_director"]["timeouts"][0].update(after=text))
    at = f"/nodes/{DIRECTOR}/timeouts/0/after"

    assert problems(raw) == [(at, "invalid_duration")]
    assert messages(raw)[at].startswith("node `sales_director`: ")
    assert hint in messages(raw)[at]


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("PT30M", timedelta(minutes=30)),
        ("PT48H", timedelta(hours=48)),
        ("P2D", timedelta(days=2)),
        ("P1W", timedelta(weeks=1)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("PT1H30M15S", timedelta(hours=1, minutes=30, seconds=15)),
    ],
)
def test_durations_are_iso_8601(text: str, length: timedelta) -> None:
    assert parse_duration(text) == length


def test_parse_duration_raises_its_own_error() -> None:
    with pytest.raises(DurationInvalid):
        parse_duration("tomorrow")


def test_timeout_options_go_with_their_action() -> None:
    def edit(nodes: dict[str, Any], _: Any) -> None:
        nodes["sales_director"]["timeouts"] = [
            {"after": "PT1H", "action": "escalate", "repeat_every": "PT1H"},
            {"after": "PT2H", "action": "remind", "max_reminders": 3},
            {"after": "PT3H", "action": "remind", "escalate_to": {"type": "admin"}},
            {"after": "PT4H", "action": "remind", "repeat_every": "soon"},
        ]

    at = f"/nodes/{DIRECTOR}/timeouts"

    assert problems(changed(edit)) == [
        (f"{at}/0", "invalid_timeout"),
        (f"{at}/0/repeat_every", "invalid_timeout"),
        (f"{at}/1/max_reminders", "invalid_timeout"),
        (f"{at}/2/escalate_to", "invalid_timeout"),
        (f"{at}/3/repeat_every", "invalid_duration"),
    ]


def test_one_automatic_decision_per_node_and_nothing_after_it() -> None:
    def edit(nodes: dict[str, Any], _: Any) -> None:
        nodes["ceo"]["timeouts"] = [
            {"after": "P2D", "action": "auto_approve"},
            {"after": "P1D", "action": "remind"},
            {"after": "P3D", "action": "remind"},
            {"after": "P2D", "action": "auto_reject"},
        ]

    raw = changed(edit)
    at = f"/nodes/{CEO}/timeouts"

    assert problems(raw) == [
        (f"{at}/2/after", "timeout_never_fires"),
        (f"{at}/3/action", "conflicting_timeouts"),
    ]
    assert "comes after the automatic decision of timeout 1 (P2D)" in messages(raw)[f"{at}/2/after"]


# -- the document's settings ---------------------------------------------------------------


def test_each_way_to_start_is_listed_once() -> None:
    raw = {**contract_flow(), "start_by": ["manual", "rule", "manual"]}

    assert problems(raw) == [("/start_by/2", "duplicate_value")]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"withdraw": "always"}, [("/withdraw", "enum")]),
        ({"start_by": ["email"]}, [("/start_by/0", "enum")]),
        ({"admin": "1"}, [("/admin", "type")]),
        ({"entry_condition": "amount > 5"}, [("/entry_condition", "type")]),
        ({"kind": "flow"}, [("", "additionalProperties")]),
        ({"nodes": []}, [("/nodes", "minItems")]),
    ],
)
def test_document_settings_are_checked_by_the_schema(
    edit: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert problems({**contract_flow(), **edit}) == expected


def test_node_shapes_are_checked_by_their_type() -> None:
    def edit(nodes: dict[str, Any], _: Any) -> None:
        nodes["legal"]["type"] = "aprover"
        nodes["ceo"]["assignees"] = [{"type": "boss"}]
        nodes["finance"]["mode"] = "all"
        nodes["mark_approved"]["actions"][2]["url"] = "erp.example.com"

    raw = changed(edit)

    assert problems(raw) == [
        (f"/nodes/{CEO}/assignees/0/type", "enum"),
        (f"/nodes/{LEGAL}/type", "enum"),
        (f"/nodes/{FINANCE}/mode", "enum"),
        (f"/nodes/{ACTION}/actions/2/url", "invalid_url"),
    ]
    assert "(did you mean `approver`?)" in messages(raw)[f"/nodes/{LEGAL}/type"]
    assert messages(raw)[f"/nodes/{ACTION}/actions/2/url"].startswith(
        "node `mark_approved`: webhook URL `erp.example.com` is not an http(s) URL"
    )


def test_a_document_that_fails_its_schema_still_gets_its_nodes_checked() -> None:
    def edit(nodes: dict[str, Any], raw: dict[str, Any]) -> None:
        del raw["label"]["zh"]
        nodes["legal"]["assignees"] = [{"type": "role", "role": "legl"}]
        nodes["finance"]["mode"] = "all"
        nodes["finance"]["assignees"] = [{"type": "role", "role": "fin"}]

    raw = changed(edit)

    assert problems(raw) == [
        ("/label", "required"),
        (f"/nodes/{LEGAL}/assignees/0/role", "unknown_role"),
        (f"/nodes/{FINANCE}/mode", "enum"),
    ]


def test_a_document_whose_nodes_all_parse_gets_its_graph_checked_too() -> None:
    def edit(nodes: dict[str, Any], raw: dict[str, Any]) -> None:
        raw["withdraw"] = "sometimes"
        nodes["legal"]["next"] = "notify_owner"

    assert problems(changed(edit)) == [
        (f"/nodes/{LEGAL}/next", "leaves_region"),
        ("/withdraw", "enum"),
    ]


def test_pending_entities_replace_their_published_version() -> None:
    from tests.engine.test_flow_contract import CONTRACT_ENTITY

    pending = {
        **CONTRACT_ENTITY,
        "fields": [f for f in CONTRACT_ENTITY["fields"] if f["name"] != "legal_reviewer"],
    }
    context = CheckContext(published=CONTEXT.published, pending={"entity": {"contract": pending}})

    assert problems(contract_flow(), context) == [
        (f"/nodes/{LEGAL}/assignees/0/field", "unknown_field")
    ]

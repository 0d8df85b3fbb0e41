"""Conditional rules: the server's evaluator, what a save keeps, and the browser's copy agreeing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from formloom.engine.entities import EntityDoc
from formloom.engine.forms import (
    FORM_RULES_JS,
    Form,
    build_form,
    effective_payload,
    evaluate_rules,
    layout_kind,
)
from formloom.engine.forms.rules import UNREADABLE, read_value
from formloom.engine.meta import CheckContext
from formloom.engine.records.compiled import compile_entity
from tests.engine.test_form_samples import (
    NOW,
    choices,
    entities,
    field,
    label,
    layout,
    opportunity,
    placement,
)

RECORD = {"id": 12, "version": 3, "name": "Deal", "stage": "new", "amount": 1000, "discount": 5}


def sample_form(record: dict[str, Any] | None = None, **kwargs: Any) -> Form:
    return build_form(
        opportunity(),
        layout(),
        field_modes=kwargs.pop("field_modes", {}),
        record=record,
        now=NOW,
        user_id=7,
        entities=entities(),
        **kwargs,
    )


# -- the server's evaluator -----------------------------------------------------------------------


def test_a_field_shows_and_becomes_required_when_its_condition_holds() -> None:
    form = sample_form()

    before = evaluate_rules(form, {"discount": 10})
    after = evaluate_rules(form, {"discount": 30})

    assert (before["discount_reason"].visible, before["discount_reason"].required) == (False, False)
    assert (after["discount_reason"].visible, after["discount_reason"].required) == (True, True)


def test_a_field_locks_when_its_condition_holds_and_is_then_not_required() -> None:
    form = sample_form(RECORD)

    state = evaluate_rules(form, {"stage": "won", "amount": 5})

    assert state["amount"].read_only
    assert state.values["amount"] == 1000  # the stored value, not the posted one
    assert not evaluate_rules(form, {"stage": "new"})["amount"].read_only


def test_the_entitys_required_when_shows_on_the_form() -> None:
    form = sample_form()

    assert not evaluate_rules(form, {"stage": "new"})["next_step"].required
    assert evaluate_rules(form, {"stage": "won"})["next_step"].required


def test_a_field_read_only_for_the_viewer_is_never_required_by_the_form() -> None:
    form = sample_form(field_modes={"lost_reason": "read_only"})

    state = evaluate_rules(form, {"stage": "lost"})

    assert state["lost_reason"].visible and state["lost_reason"].read_only
    assert not state["lost_reason"].required


def test_values_of_fields_the_viewer_cannot_edit_are_not_taken() -> None:
    form = sample_form(RECORD, field_modes={"stage": "read_only"})

    state = evaluate_rules(form, {"stage": "lost"})

    assert not state["lost_reason"].visible
    assert state.values["stage"] == "new"


def test_dependent_picklist_choices_follow_the_parent() -> None:
    form = sample_form()

    assert evaluate_rules(form, {"product_line": "software"}).choices["product"] == ("crm", "erp")
    assert evaluate_rules(form, {}).choices["product"] == ()


def test_read_value_reads_only_the_shape_of_a_value() -> None:
    assert read_value(" 12 ", "integer", "scalar") == 12
    assert read_value("1e3", "decimal", "scalar") == 1000
    assert read_value("１２", "integer", "scalar") is UNREADABLE
    assert read_value("2026-02-30", "date", "scalar") is UNREADABLE
    assert read_value("2026-03-10T09:00", "datetime", "scalar") is UNREADABLE
    assert read_value(5, "string", "text") is UNREADABLE
    assert read_value(True, "integer", "scalar") is UNREADABLE


# -- what a save keeps ----------------------------------------------------------------------------


def test_a_value_posted_for_a_field_hidden_by_a_rule_is_ignored_and_never_required() -> None:
    form = sample_form(RECORD)

    saved, issues = effective_payload(
        form, {"version": 3, "discount": 10, "discount_reason": "ignore me", "lost_reason": "x"}
    )

    assert saved == {"version": 3, "discount": 10}
    assert issues == []


def test_a_value_posted_for_a_field_locked_by_a_rule_keeps_the_stored_value() -> None:
    form = sample_form(RECORD)

    saved, issues = effective_payload(form, {"stage": "won", "amount": 1, "next_step": "sign"})

    assert saved == {"stage": "won", "next_step": "sign"}
    assert issues == []


def test_fields_required_by_rules_or_the_entity_must_be_filled() -> None:
    form = sample_form(RECORD)

    _, issues = effective_payload(
        form, {"stage": "lost", "lost_reason": "  ", "name": ""}, lang="zh"
    )

    assert [(i.path, i.code) for i in issues] == [
        ("/name", "required"),
        ("/lost_reason", "required"),
    ]
    assert issues[0].message == "名称为必填项"


def test_fields_not_on_the_form_or_not_editable_are_refused() -> None:
    form = sample_form(RECORD, field_modes={"margin": "hidden", "amount": "read_only"})

    _, issues = effective_payload(
        form, {"margin": 1, "amount": 2, "net": 3, "created_at": "x", "amout": 4}
    )

    assert [(i.path, i.code) for i in issues] == [
        ("/margin", "not_on_form"),
        ("/amount", "field_not_writable"),
        ("/net", "field_not_writable"),
        ("/created_at", "read_only"),
        ("/amout", "unknown_field"),
    ]
    assert "did you mean `amount`?" in issues[-1].message


def test_a_new_record_gets_the_form_defaults_for_what_the_payload_leaves_out() -> None:
    form = sample_form()

    saved, issues = effective_payload(form, {"name": "New deal", "discount": 30})

    assert saved == {
        "name": "New deal",
        "stage": "new",
        "close_date": "2026-04-09",
        "owner": 7,
        "discount": 30,
    }
    assert [(i.path, i.code) for i in issues] == [("/discount_reason", "required")]


def test_a_dependent_choice_must_fit_its_parent() -> None:
    form = sample_form(RECORD)

    _, issues = effective_payload(form, {"product_line": "software", "product": "router"})

    assert [(i.path, i.code) for i in issues] == [("/product", "dependent_choice")]
    assert "choose one of: crm, erp" in issues[0].message


# -- the browser's copy ---------------------------------------------------------------------------

LAB = {
    "name": "lab",
    "label": label("Lab"),
    "fields": [
        field("title", "text"),
        field("code", "text"),
        field("qty", "integer"),
        field("price", "decimal"),
        field("due", "date"),
        field("at", "datetime"),
        field("flag", "boolean"),
        field("colors", "multi_select", options=choices("red", "green", "blue")),
        field("tags", "tags"),
        field("kind", "single_select", options=choices("a", "b", "c")),
        field("sub", "single_select", options=choices("a1", "a2", "b1")),
        field("secret", "integer"),
        field("locked", "text"),
        field("note", "long_text"),
        field("region", "region"),
        field("forced", "text", required_when={"field": "qty", "op": "ge", "value": 50}),
        *(
            field(name, "text")
            for name in (
                "r_eq r_ne r_gt r_ge r_lt r_le r_in r_not_in r_contains r_starts r_has_any "
                "r_tags r_empty r_between r_open r_month r_today r_group r_const r_req r_chain "
                "r_blank r_region"
            ).split()
        ),
    ],
}
LAB_RULES: list[tuple[str, str, dict[str, Any]]] = [
    ("r_eq", "visible_when", {"field": "title", "op": "eq", "value": "Hello"}),
    ("r_ne", "visible_when", {"field": "kind", "op": "ne", "value": "a"}),
    ("r_gt", "visible_when", {"field": "qty", "op": "gt", "value": 10}),
    ("r_ge", "visible_when", {"field": "price", "op": "ge", "value": 99.5}),
    ("r_lt", "visible_when", {"field": "due", "op": "lt", "value": "2026-03-01"}),
    ("r_le", "visible_when", {"field": "at", "op": "le", "value": "2026-03-10T09:00:00+08:00"}),
    ("r_in", "visible_when", {"field": "kind", "op": "in", "value": ["a", "b"]}),
    ("r_not_in", "visible_when", {"field": "qty", "op": "not_in", "value": [1, 2]}),
    ("r_contains", "visible_when", {"field": "title", "op": "contains", "value": "ELL"}),
    ("r_starts", "visible_when", {"field": "code", "op": "starts_with", "value": "ht-"}),
    ("r_has_any", "visible_when", {"field": "colors", "op": "contains", "value": ["red"]}),
    ("r_tags", "visible_when", {"field": "tags", "op": "contains", "value": ["vip", "key"]}),
    ("r_empty", "visible_when", {"field": "price", "op": "is_empty", "value": True}),
    ("r_between", "visible_when", {"field": "qty", "op": "between", "value": [5, 10]}),
    ("r_open", "visible_when", {"field": "price", "op": "between", "value": [None, 100]}),
    ("r_month", "visible_when", {"field": "due", "op": "eq", "value": {"relative": "this_month"}}),
    ("r_today", "visible_when", {"field": "at", "op": "ge", "value": {"relative": "today"}}),
    (
        "r_group",
        "visible_when",
        {
            "and": [
                {
                    "or": [
                        {"field": "flag", "op": "eq", "value": True},
                        {"field": "qty", "op": "gt", "value": 100},
                    ]
                },
                {"not": {"field": "kind", "op": "eq", "value": "c"}},
            ]
        },
    ),
    (
        "r_const",
        "visible_when",
        {
            "or": [
                {"field": "secret", "op": "gt", "value": 5},
                {"field": "locked", "op": "eq", "value": "open"},
            ]
        },
    ),
    ("r_req", "visible_when", {"field": "flag", "op": "eq", "value": True}),
    ("r_req", "required_when", {"field": "qty", "op": "ge", "value": 3}),
    ("code", "read_only_when", {"field": "kind", "op": "eq", "value": "c"}),
    ("r_chain", "visible_when", {"field": "code", "op": "starts_with", "value": "HT-"}),
    ("r_chain", "read_only_when", {"field": "title", "op": "eq", "value": "lock"}),
    ("r_blank", "required_when", {"field": "note", "op": "is_empty", "value": False}),
    ("r_region", "visible_when", {"field": "region", "op": "is_empty", "value": False}),
    ("forced", "visible_when", {"field": "flag", "op": "eq", "value": True}),
]
LAB_RECORD = {"id": 1, "code": "HT-0001", "secret": 9, "locked": "closed", "title": "Stored"}
CASES: list[dict[str, Any]] = [
    {},
    {"title": "Hello", "kind": "b", "qty": 11, "price": 99.5, "due": "2026-02-28"},
    {"title": "hello", "kind": "a", "qty": "11", "price": "99.49", "due": "2026-03-01"},
    {"title": "  ", "kind": "", "qty": " 7 ", "price": "", "due": "2026-03-31"},
    {"title": "Shell", "kind": "c", "qty": "abc", "price": "1e2", "due": "2026-02-30"},
    {"qty": 1, "price": 100, "at": "2026-03-10T09:00:00+08:00", "flag": True},
    {"qty": 2.5, "price": 100.01, "at": "2026-03-10T01:00:01Z", "flag": False},
    {"qty": "１２", "at": "2026-03-10T09:00", "flag": "true", "colors": ["green", "red"]},
    {"qty": 5, "colors": [], "tags": ["key"], "code": "ht-9", "kind": "c"},
    {"qty": 10, "colors": "red", "tags": "vip", "code": "HT-9", "title": "lock"},
    {"qty": 101, "flag": None, "kind": "b", "code": None},
    {"qty": 50, "flag": True, "note": "   ", "region": {"province": "440000"}},
    {"qty": 3, "flag": True, "note": "x", "region": None, "forced": ""},
    {"qty": -4, "price": "-0.5", "due": " 2026-03-09 ", "at": "2026-03-09T23:59:59+08:00"},
    {"title": 5, "qty": True, "price": False, "due": 20260301, "at": 0},
    {"sub": "a1", "kind": "a"},
    {"secret": 0, "locked": "open"},
]


def lab_form() -> Form:
    rules = [{"fields": [target], key: condition} for target, key, condition in LAB_RULES]
    names = [f["name"] for f in LAB["fields"]]
    body = {
        "name": "lab_edit",
        "label": label("Lab"),
        "entity": "lab",
        "tabs": [
            {
                "name": "main",
                "label": label("Main"),
                "sections": [{"name": "all", "fields": [placement(n) for n in names]}],
            }
        ],
        "rules": rules,
        "dependent_picklists": [
            {"parent": "kind", "child": "sub", "choices": {"a": ["a1", "a2"], "b": ["b1"]}}
        ],
    }
    document = layout_kind.validate(body, CheckContext(published={"entity": {"lab": LAB}}))
    entity = compile_entity(EntityDoc.model_validate(LAB))
    return build_form(
        entity,
        document,
        field_modes={"secret": "hidden", "locked": "read_only"},
        record=LAB_RECORD,
        now=NOW,
    )


def run_in_node(program: dict[str, Any], cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    script = (
        f"const rules = require({json.dumps(str(FORM_RULES_JS))});"
        "const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify("
        "input.cases.map(values => rules.evaluate(input.program, values))));"
    )
    result = subprocess.run(
        ["node", "-e", script],
        input=json.dumps({"program": program, "cases": cases}),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    answer: list[dict[str, Any]] = json.loads(result.stdout)
    return answer


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_browser_evaluator_agrees_with_the_server_on_every_case() -> None:
    # given
    form = lab_form()
    program = json.loads(json.dumps(form.ui_schema["rules"]))

    # when
    in_python = [evaluate_rules(form, values).as_dict() for values in CASES]
    in_node = run_in_node(program, CASES)

    # then
    for values, server, browser in zip(CASES, in_python, in_node, strict=True):
        assert browser == server, f"diverged for {values}"


def test_the_lab_cases_exercise_every_rule_both_ways() -> None:
    form = lab_form()
    states = [evaluate_rules(form, values) for values in CASES]

    targets = {target for target, key, _ in LAB_RULES if key == "visible_when"}
    seen_visible = {t for t in targets if any(s[t].visible for s in states)}
    seen_hidden = {t for t in targets if any(not s[t].visible for s in states)}
    assert seen_visible == targets
    assert seen_hidden == targets - {"r_const"}  # its test is on fields the viewer cannot change
    assert any(s["r_req"].required for s in states)
    assert any(s["code"].read_only for s in states)
    assert any(s["forced"].visible and not s.values.get("flag") for s in states)


def test_tests_on_fields_the_viewer_cannot_change_are_folded_into_constants() -> None:
    program = lab_form().ui_schema["rules"]

    step = next(s for s in program["steps"] if s["field"] == "r_const")
    assert step["visible_when"] == [{"any": [{"const": True}, {"const": False}]}]
    assert "secret" not in program["fields"] and "secret" not in program["initial"]
    assert "secret" not in json.dumps(program["initial"])


def test_relative_dates_reach_the_browser_as_fixed_bounds() -> None:
    program = lab_form().ui_schema["rules"]

    step = next(s for s in program["steps"] if s["field"] == "r_month")
    assert step["visible_when"] == [
        {
            "field": "due",
            "op": "range",
            "value": {"low": "2026-03-01", "high": "2026-04-01", "include_high": False},
        }
    ]


def test_the_evaluator_script_stays_small() -> None:
    lines = Path(FORM_RULES_JS).read_text(encoding="utf-8").splitlines()

    assert len(lines) < 300

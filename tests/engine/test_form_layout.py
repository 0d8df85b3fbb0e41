"""The `layout` kind: every problem of a layout is reported with its place, cause and fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from formloom.engine.errors import DocumentInvalid
from formloom.engine.forms import (
    LayoutDoc,
    build_form,
    choose_layout,
    layout_dependencies,
    layout_kind,
)
from formloom.engine.meta import CheckContext, document_kinds
from tests.engine.test_form_samples import (
    NOW,
    context,
    label,
    layout_body,
    opportunity,
    placement,
)

ROOT = Path(__file__).resolve().parents[2]


def issues(raw: Any, ctx: CheckContext | None = None) -> dict[str, tuple[str, str]]:
    """path → (code, message) of every issue; fails when the layout is valid."""
    with pytest.raises(DocumentInvalid) as caught:
        layout_kind.validate(raw, ctx or context())
    return {i.path: (i.code, i.message) for i in caught.value.issues}


def codes(raw: Any, ctx: CheckContext | None = None) -> list[tuple[str, str]]:
    with pytest.raises(DocumentInvalid) as caught:
        layout_kind.validate(raw, ctx or context())
    return [(i.path, i.code) for i in caught.value.issues]


def with_fields(*fields: dict[str, Any], columns: int = 2, **extra: Any) -> dict[str, Any]:
    """A one-section layout placing ``fields`` (plus the entity's required ones)."""
    placed = [placement("name"), placement("stage"), *fields]
    section = {"name": "main", "columns": columns, "fields": placed}
    tabs = [{"name": "main", "label": label("Main"), "sections": [section]}]
    body = layout_body(tabs=tabs, rules=[], defaults={}, dependent_picklists=[], related_lists=[])
    body.update(extra)
    return body


def test_the_kind_is_registered_and_a_good_layout_parses() -> None:
    # given
    raw = layout_body(roles=["sales_rep"])

    # when
    document = document_kinds.get("layout").validate(raw, context())

    # then
    assert isinstance(document, LayoutDoc)
    assert document.purpose == "edit"
    assert [t.name for t in document.tabs] == ["main", "details"]
    assert document.defaults["owner"].current_user is True


def test_an_unknown_field_is_named_with_a_suggestion() -> None:
    found = issues(with_fields(placement("amout")))

    code, message = found["/tabs/0/sections/0/fields/2/field"]
    assert code == "unknown_field"
    assert "has no field `amout`" in message
    assert "did you mean `amount`?" in message


def test_a_system_column_is_explained() -> None:
    found = issues(with_fields(placement("owner_id")))

    code, message = found["/tabs/0/sections/0/fields/2/field"]
    assert code == "unknown_field"
    assert "system column" in message


def test_a_field_placed_twice_points_at_the_second_place_and_names_the_first() -> None:
    found = issues(with_fields(placement("amount"), placement("amount")))

    code, message = found["/tabs/0/sections/0/fields/3/field"]
    assert code == "duplicate_field"
    assert "/tabs/0/sections/0/fields/2" in message


def test_required_fields_missing_from_an_edit_layout_are_listed() -> None:
    raw = with_fields()
    raw["tabs"][0]["sections"][0]["fields"] = [placement("name")]

    found = codes(raw)

    assert found == [("/tabs", "missing_required_field")]
    message = issues(raw)["/tabs"][1]
    assert "`stage` is required" in message
    assert '{"field": "stage"}' in message


def test_a_view_layout_may_leave_out_required_fields() -> None:
    raw = with_fields(purpose="view")
    raw["tabs"][0]["sections"][0]["fields"] = [placement("name")]

    assert layout_kind.validate(raw, context()).purpose == "view"


@pytest.mark.parametrize("columns", [0, 5])
def test_columns_outside_one_to_four_are_refused(columns: int) -> None:
    found = issues(with_fields(columns=columns))

    code, message = found["/tabs/0/sections/0/columns"]
    assert code == "bad_columns"
    assert f"has {columns} columns; use 1 to 4" in message


def test_a_span_wider_than_its_section_is_refused() -> None:
    found = issues(with_fields(placement("amount", span=3)))

    code, message = found["/tabs/0/sections/0/fields/2/span"]
    assert code == "bad_span"
    assert "use a span from 1 to 2" in message


def test_tab_and_section_names_are_unique_and_collapsed_needs_collapsible() -> None:
    raw = with_fields()
    section = raw["tabs"][0]["sections"][0]
    raw["tabs"][0]["sections"].append({**section, "fields": [], "collapsed": True})

    found = codes(raw)

    assert ("/tabs/0/sections/1/name", "duplicate_name") in found
    assert ("/tabs/0/sections/1/collapsed", "not_collapsible") in found


def test_a_string_for_columns_is_a_schema_error_with_its_pointer() -> None:
    raw = with_fields()
    raw["tabs"][0]["sections"][0]["columns"] = "2"

    assert ("/tabs/0/sections/0/columns", "type") in codes(raw)


def test_conditions_on_unknown_fields_name_the_place_inside_the_rule() -> None:
    raw = with_fields(
        placement("lost_reason"),
        rules=[
            {"fields": ["lost_reason"], "visible_when": {"field": "stag", "op": "eq", "value": "x"}}
        ],
    )

    code, message = issues(raw)["/rules/0/visible_when/field"]
    assert code == "unknown_field"
    assert "did you mean `stage`?" in message


def test_a_condition_value_is_checked_against_the_field_type() -> None:
    raw = with_fields(
        placement("lost_reason"),
        rules=[
            {
                "fields": ["lost_reason"],
                "visible_when": {"field": "stage", "op": "eq", "value": "lots"},
            }
        ],
    )

    assert codes(raw) == [("/rules/0/visible_when/value", "unknown_choice")]


def test_rule_targets_must_be_placed_known_and_a_rule_needs_a_condition() -> None:
    raw = with_fields(
        rules=[
            {"fields": ["lost_reason", "nope"], "required_when": _stage_is("lost")},
            {"fields": ["name"]},
        ]
    )

    found = issues(raw)

    assert found["/rules/0/fields/0"][0] == "not_placed"
    assert found["/rules/0/fields/1"][0] == "unknown_field"
    assert found["/rules/1"][0] == "empty_rule"


def test_a_rule_cannot_hide_a_field_the_entity_requires() -> None:
    raw = with_fields(rules=[{"fields": ["name"], "visible_when": _stage_is("lost")}])

    code, message = issues(raw)["/rules/0/visible_when"]
    assert code == "hides_required"
    assert "required_when" in message


def test_computed_and_always_required_fields_take_no_required_when() -> None:
    raw = with_fields(
        placement("net"),
        rules=[{"fields": ["net", "name"], "required_when": _stage_is("lost")}],
    )

    found = codes(raw)

    assert found == [
        ("/rules/0/required_when", "computed_field"),
        ("/rules/0/required_when", "redundant_condition"),
    ]


def test_rules_that_depend_on_each_other_in_a_circle_are_refused() -> None:
    raw = with_fields(
        placement("amount"),
        placement("discount"),
        rules=[
            {"fields": ["amount"], "visible_when": _gt("discount", 10)},
            {"fields": ["discount"], "read_only_when": _gt("amount", 1000)},
        ],
    )

    found = issues(raw)

    (path,) = found
    code, message = found[path]
    assert code == "rule_cycle"
    assert path.startswith("/rules/")
    assert "`amount`" in message and "`discount`" in message


def test_a_rule_on_a_field_testing_the_field_itself_is_a_circle() -> None:
    raw = with_fields(
        placement("amount"), rules=[{"fields": ["amount"], "read_only_when": _gt("amount", 5)}]
    )

    assert codes(raw) == [("/rules/0/read_only_when", "rule_cycle")]


def test_defaults_are_checked_against_their_field() -> None:
    raw = with_fields(
        placement("amount"),
        placement("close_date"),
        placement("account"),
        placement("net"),
        placement("lines"),
        defaults={
            "amount": {"value": "lots"},
            "close_date": {"expression": "today() + 3"},
            "account": {"current_user": True},
            "stage": {"value": "new", "expression": "'new'"},
            "net": {"value": 1},
            "lost_reason": {"value": "x"},
            "nope": {"value": 1},
        },
    )

    found = issues(raw)

    assert found["/defaults/amount/value"][0] == "type"
    assert "default of field `amount`" in found["/defaults/amount/value"][1]
    assert found["/defaults/close_date/expression"][1].startswith("default of `close_date`")
    assert found["/defaults/account/current_user"][0] == "not_a_user_field"
    assert found["/defaults/stage"][0] == "invalid_default"
    assert found["/defaults/net"][0] == "not_settable"
    assert found["/defaults/lost_reason"][0] == "not_placed"
    assert found["/defaults/nope"][0] == "unknown_field"


def test_a_default_expression_must_give_the_field_type() -> None:
    raw = with_fields(placement("close_date"), defaults={"close_date": {"expression": "'soon'"}})

    (path, code), *_ = codes(raw)
    assert (path, code) == ("/defaults/close_date/expression", "wrong_result_type")


def test_dependent_picklists_need_selects_and_known_values() -> None:
    raw = with_fields(
        placement("product_line"),
        placement("product"),
        placement("amount"),
        dependent_picklists=[
            {
                "parent": "product_line",
                "child": "product",
                "choices": {"hardwear": ["router"], "software": ["crm", "erpp"]},
            },
            {"parent": "amount", "child": "product", "choices": {}},
        ],
    )

    found = issues(raw)

    assert found["/dependent_picklists/0/choices/hardwear"] == (
        "unknown_choice",
        "`hardwear` is not a choice of `product_line` (did you mean `hardware`?)",
    )
    assert found["/dependent_picklists/0/choices/software/1"][0] == "unknown_choice"
    assert found["/dependent_picklists/1/parent"][0] == "not_a_select"


def test_a_field_depends_on_one_parent_and_chains_cannot_circle() -> None:
    raw = with_fields(
        placement("product_line"),
        placement("product"),
        dependent_picklists=[
            {"parent": "product_line", "child": "product", "choices": {}},
            {"parent": "stage", "child": "product", "choices": {}},
            {"parent": "product", "child": "product", "choices": {}},
        ],
    )

    found = codes(raw)

    assert ("/dependent_picklists/1/child", "duplicate_child") in found
    assert ("/dependent_picklists/2/child", "same_field") in found


def test_a_related_list_needs_a_lookup_back() -> None:
    raw = with_fields(
        related_lists=[
            {"entity": "account", "columns": ["name"]},
            {"entity": "task", "field": "subject", "columns": ["subject", "nope"]},
            {"entity": "tsk", "columns": ["subject"]},
            {"entity": "task", "columns": ["subject"], "sort": [{"field": "notes"}], "limit": 0},
        ]
    )

    found = issues(raw)

    assert found["/related_lists/0"][0] == "no_lookup_back"
    assert "has no lookup to `opportunity`" in found["/related_lists/0"][1]
    assert found["/related_lists/1/field"][0] == "no_lookup_back"
    assert "use one of: opportunity" in found["/related_lists/1/field"][1]
    assert found["/related_lists/1/columns/1"][0] == "unknown_field"
    assert "did you mean `task`?" in found["/related_lists/2/entity"][1]
    assert found["/related_lists/3/sort/0/field"][0] == "not_sortable"
    assert found["/related_lists/3/limit"][0] == "bad_limit"


def test_the_entity_and_the_roles_must_exist() -> None:
    found = issues(layout_body(entity="oportunity", roles=["sales_rep", "sales_rapp"]))

    assert found["/entity"][0] == "unknown_entity"
    assert "did you mean `opportunity`?" in found["/entity"][1]
    assert found["/roles/1"][0] == "unknown_role"
    assert "did you mean `sales_rep`?" in found["/roles/1"][1]


def test_two_layouts_of_one_entity_and_purpose_cannot_serve_the_same_role() -> None:
    other = layout_body(name="other_edit", roles=["sales_rep"])
    ctx = CheckContext(
        published={**context().published, "layout": {"other_edit": other}},
    )

    found = issues(layout_body(roles=["sales_rep", "sales_manager"]), ctx)

    code, message = found["/roles"]
    assert code == "overlapping_layout"
    assert "layout `other_edit`" in message and "sales_rep" in message
    assert layout_kind.validate(layout_body(roles=["sales_manager"]), ctx)
    assert layout_kind.validate(layout_body(purpose="view"), ctx)


def test_choose_layout_prefers_the_users_role_then_the_default_then_edit_for_view() -> None:
    # given
    everyone = layout_kind.validate(layout_body(name="everyone"), context())
    reps = layout_kind.validate(layout_body(name="reps", roles=["sales_rep"]), context())
    layouts = [everyone, reps]

    # when / then
    assert choose_layout(layouts, entity="opportunity", roles=["sales_rep"]) is reps
    assert choose_layout(layouts, entity="opportunity", roles=["sales_manager"]) is everyone
    assert choose_layout(layouts, entity="opportunity", roles=[], purpose="view") is everyone
    assert choose_layout(layouts, entity="account", roles=["sales_rep"]) is None


def test_build_form_refuses_a_layout_of_another_entity() -> None:
    document = layout_kind.validate(layout_body(), context())
    account = document.model_copy(update={"entity": "account"})

    with pytest.raises(DocumentInvalid) as caught:
        build_form(opportunity(), account, field_modes={}, now=NOW)

    assert caught.value.issues[0].code == "wrong_entity"


def test_layout_dependencies_name_the_entities_a_raw_layout_uses() -> None:
    assert layout_dependencies(layout_body()) == {"opportunity", "task"}
    assert layout_dependencies({"entity": 5}) == set()


def test_the_published_schema_accepts_the_sample_and_is_written_to_docs() -> None:
    schema = layout_kind.json_schema()

    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(layout_body(), schema)
    published = json.loads((ROOT / "docs" / "schemas" / "layout.schema.json").read_text())
    assert published == json.loads(json.dumps(schema))


def test_the_published_schema_constrains_names_columns_and_spans() -> None:
    schema = layout_kind.json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    raw = with_fields(placement("amount", span=5), columns=7)
    raw["tabs"][0]["sections"][0]["fields"].append({"field": "Bad Name"})

    paths = {"/".join(map(str, e.absolute_path)) for e in validator.iter_errors(raw)}

    assert {
        "tabs/0/sections/0/columns",
        "tabs/0/sections/0/fields/2/span",
        "tabs/0/sections/0/fields/3/field",
    } <= paths


def _stage_is(value: str) -> dict[str, Any]:
    return {"field": "stage", "op": "eq", "value": value}


def _gt(name: str, value: int) -> dict[str, Any]:
    return {"field": name, "op": "gt", "value": value}


# The import cycle kind registry → forms → conditions → entities → kind registry.
@pytest.mark.parametrize(
    "first",
    ["formloom.engine.forms", "formloom.engine.entities", "formloom.engine.forms.build"],
)
def test_the_kind_registers_whichever_module_is_imported_first(first: str) -> None:
    code = (
        f"import {first}; from formloom.engine.meta import document_kinds; "
        "from formloom.engine.forms import build_form; "
        "print(' '.join(document_kinds.names()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert "layout" in result.stdout.split()

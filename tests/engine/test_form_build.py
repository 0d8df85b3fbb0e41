"""build_form: JSON Schema, UI schema, field modes, approval-step permissions, defaults."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from formloom.engine.fields import field_types
from formloom.engine.forms import Form, build_form, form_widgets
from tests.engine.test_form_samples import NOW, entities, layout, layout_body, opportunity

RECORD = {
    "id": 12,
    "version": 3,
    "name": "Big deal",
    "stage": "new",
    "amount": 250000,
    "discount": 25,
    "discount_reason": "strategic",
    "margin": 0.3,
    "product_line": "hardware",
    "product": "router",
    "account": 5,
    "owner": 7,
    "owner_id": 7,
    "_titles": {"account": "ACME 科技"},
}


def form(**kwargs: Any) -> Form:
    options: dict[str, Any] = {
        "field_modes": {},
        "now": NOW,
        "user_id": 7,
        "entities": entities(),
        "env": "prod",
    }
    options.update(kwargs)
    chosen = options.pop("layout", layout())
    return build_form(opportunity(), chosen, **options)


def ui_field(built: Form, name: str) -> dict[str, Any]:
    for tab in built.ui_schema["tabs"]:
        for section in tab["sections"]:
            for entry in section["fields"]:
                if entry["field"] == name:
                    found: dict[str, Any] = entry
                    return found
    raise AssertionError(f"{name} is not in the UI schema")


def test_the_json_schema_holds_the_shown_fields_and_the_required_ones() -> None:
    built = form()

    schema = built.schema
    jsonschema.Draft202012Validator.check_schema(schema)
    assert list(schema["properties"])[:3] == ["name", "stage", "amount"]
    assert schema["required"] == ["name", "stage"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["net"]["readOnly"] is True
    assert schema["properties"]["discount"]["description"] == "In percent"
    assert "version" not in schema["properties"]


def test_a_new_records_schema_carries_its_defaults_and_validates_a_payload() -> None:
    built = form()

    properties = built.schema["properties"]
    assert properties["stage"]["default"] == "new"
    assert properties["owner"]["default"] == 7
    assert properties["close_date"]["default"] == "2026-04-09"
    jsonschema.validate({"name": "x", "stage": "won", "amount": 5}, built.schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x", "stage": "won", "secret": 1}, built.schema)


def test_hidden_fields_are_absent_and_read_only_ones_marked() -> None:
    built = form(field_modes={"margin": "hidden", "amount": "read_only"})

    assert "margin" not in built.schema["properties"]
    assert "margin" not in built.fields
    assert built.schema["properties"]["amount"]["readOnly"] is True
    assert ui_field(built, "amount")["mode"] == "read_only"
    assert "margin" not in built.ui_schema["order"]


def test_an_approval_step_opens_only_the_fields_it_lists() -> None:
    built = form(
        record=RECORD,
        field_modes={"discount": "read_only", "margin": "hidden"},
        node_permissions={"amount": "editable", "discount": "editable", "name": "hidden"},
    )

    modes = {name: f.mode for name, f in built.fields.items()}
    assert modes["amount"] == "editable"
    assert modes["discount"] == "read_only"  # the viewer's own mode is narrower
    assert modes["stage"] == "read_only"  # not listed by the step
    assert "name" not in modes and "margin" not in modes
    assert built.schema["properties"]["version"]["type"] == "integer"


def test_a_view_layout_shows_everything_read_only() -> None:
    built = form(layout=layout(purpose="view"), record=RECORD)

    assert {f.mode for f in built.fields.values()} == {"read_only"}
    assert built.schema["required"] == []


def test_without_a_layout_every_field_shows_in_order_in_two_columns() -> None:
    built = form(layout=None)

    entity = opportunity()
    assert list(built.fields) == list(entity.fields)
    (tab,) = built.ui_schema["tabs"]
    (section,) = tab["sections"]
    assert section["columns"] == 2
    assert ui_field(built, "lines")["span"] == 2
    assert built.ui_schema["related_lists"] == []


def test_the_ui_schema_names_a_widget_per_field_type() -> None:
    built = form()

    widgets_by_field = {
        name: ui_field(built, name)["widget"]
        for name in ("name", "stage", "amount", "close_date", "account", "owner", "region")
    }
    assert widgets_by_field == {
        "name": "text",
        "stage": "select",
        "amount": "number",
        "close_date": "date",
        "account": "lookup",
        "owner": "lookup",
        "region": "region",
    }
    assert ui_field(built, "notes")["widget"] == "rich_text"
    assert ui_field(built, "lines")["widget"] == "grid"
    assert ui_field(built, "tags")["widget"] == "tags"
    assert ui_field(built, "net")["widget"] == "display"


def test_widget_options_carry_search_urls_choices_grids_and_formats() -> None:
    built = form(lang="zh")

    assert ui_field(built, "account")["options"]["search_url"] == (
        "/api/envs/prod/records/account?q="
    )
    assert ui_field(built, "owner")["options"]["search_url"] == "/api/envs/prod/users?q="
    assert ui_field(built, "stage")["options"]["choices"][0] == {
        "value": "new",
        "label": "new（中）",
    }
    assert ui_field(built, "amount")["options"] == {"step": "0.01", "prefix": "CNY"}
    assert ui_field(built, "discount")["options"]["suffix"] == "%"
    grid = ui_field(built, "lines")["options"]
    assert grid["entity"] == "opportunity_line"
    assert [c["field"] for c in grid["columns"]] == ["product", "qty"]
    assert ui_field(built, "region")["options"]["levels"] == ["province", "city", "district"]


def test_the_ui_schema_keeps_tabs_sections_columns_spans_and_labels_in_the_language() -> None:
    built = form(lang="zh")

    tabs = built.ui_schema["tabs"]
    assert [t["label"] for t in tabs] == ["基本信息", "详情"]
    pricing = tabs[0]["sections"][1]
    assert (pricing["name"], pricing["label"], pricing["collapsible"]) == ("pricing", "价格", True)
    assert ui_field(built, "discount_reason")["span"] == 2
    assert ui_field(built, "name")["label"] == "名称"
    assert ui_field(built, "name")["placeholder"] == "商机名称"
    assert tabs[1]["sections"][0]["columns"] == 3


def test_related_lists_carry_their_lookup_columns_sort_and_url() -> None:
    built = form(record=RECORD)

    (related,) = built.ui_schema["related_lists"]
    assert related["entity"] == "task"
    assert related["field"] == "opportunity"
    assert [c["field"] for c in related["columns"]] == ["subject", "due_date"]
    assert related["url"] == (
        "/api/envs/prod/records/task?opportunity={id}&limit=10&fields=subject,due_date"
        "&sort=-due_date"
    )


def test_defaults_fill_a_new_record_but_not_a_stored_one() -> None:
    new = form()
    stored = form(record={"id": 1, "version": 1, "name": "x", "stage": "won"})

    assert {k: new.initial[k] for k in ("stage", "close_date", "owner")} == {
        "stage": "new",
        "close_date": "2026-04-09",
        "owner": 7,
    }
    assert stored.initial.get("owner") is None
    assert stored.initial["stage"] == "won"


def test_layout_defaults_only_fill_fields_the_viewer_may_edit() -> None:
    built = form(field_modes={"owner": "read_only"})

    assert "owner" not in built.initial


def test_a_default_expression_that_fails_leaves_the_field_empty() -> None:
    raw = layout_body()
    raw["defaults"]["margin"] = {"expression": "discount / 0.0"}
    built = form(layout=_validated(raw))

    assert built.initial["margin"] is None


def test_every_registered_field_type_has_a_widget() -> None:
    missing = [name for name in field_types.names() if name not in form_widgets]

    assert missing == []


def test_now_must_carry_a_timezone() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        form(now=NOW.replace(tzinfo=None))


def test_the_initial_rule_state_follows_the_record() -> None:
    built = form(record={**RECORD, "stage": "lost"})

    state = built.state
    assert state["lost_reason"].visible and state["lost_reason"].required
    assert state["amount"].read_only
    assert state["discount_reason"].visible
    assert built.schema["required"] == ["name", "stage", "discount_reason", "lost_reason"]


def _validated(raw: dict[str, Any]) -> Any:
    from formloom.engine.forms import layout_kind
    from tests.engine.test_form_samples import context

    return layout_kind.validate(raw, context())

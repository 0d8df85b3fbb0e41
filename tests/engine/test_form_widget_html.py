"""The interactive widgets' HTML: lookup titles and chips, uploads, grid cells with their errors."""

from __future__ import annotations

from typing import Any

from formloom.engine.entities import EntityDoc
from formloom.engine.forms import Form, build_form, payload_from_form
from formloom.engine.forms.render import STATIC_DIR
from formloom.engine.records.compiled import compile_entity
from tests.engine.test_form_render import Elements, render, sample_form
from tests.engine.test_form_samples import NOW, entities, field, label

ROWS = [{"product": "Pen", "qty": "2"}, {"product": "Ink", "qty": "0"}]
PROJECT = {
    "name": "project",
    "label": label("Project", "项目"),
    "title_field": "name",
    "fields": [
        field("name", "text"),
        field("accounts", "multi_lookup", options={"entity": "account"}),
        field("deal", "lookup", options={"entity": "opportunity"}),
        field("brief", "file"),
        field("photos", "image", options={"multiple": True}),
    ],
}


def project_form(record: dict[str, Any] | None = None) -> Form:
    return build_form(
        compile_entity(EntityDoc.model_validate(PROJECT)),
        None,
        field_modes={},
        record=record,
        now=NOW,
        user_id=7,
        entities=entities(),
        env="prod",
    )


def test_a_cells_error_is_shown_next_to_the_cell_and_summarised_under_the_grid() -> None:
    errors = [
        {"path": "/lines/1/qty", "code": "too_small", "message": "Qty must be at least 1"},
        {"path": "/lines/0/id", "code": "not_a_child", "message": "Not a line of this deal"},
    ]

    html = Elements(render(sample_form(), values={"lines": ROWS}, errors=errors))

    bad = html.find("input", id="fl-lines-1-qty")
    assert bad["aria-invalid"] == "true"
    assert bad["aria-describedby"] == "fl-lines-1-qty-error"
    assert html.find("p", id="fl-lines-1-qty-error") is not None
    assert "aria-invalid" not in html.find("input", id="fl-lines-0-qty")
    assert html.find("p", id="fl-lines-error") is not None
    text = "".join(html.text)
    assert "Row 2: Qty must be at least 1" in text
    assert "Row 1: Not a line of this deal" in text


def test_cell_errors_speak_the_forms_language() -> None:
    errors = [{"path": "/lines/0/qty", "code": "required", "message": "数量为必填项"}]

    html = Elements(render(sample_form(lang="zh"), values={"lines": ROWS}, errors=errors))

    assert "第 1 行：数量为必填项" in "".join(html.text)


def test_a_lookup_names_the_title_field_its_search_results_are_shown_by() -> None:
    form = project_form()

    box = Elements(render(form)).find("div", **{"data-fl-name": "deal"})

    assert box["data-fl-search"] == "/api/envs/prod/records/opportunity?q="
    assert box["data-fl-title"] == "name"
    assert box["data-fl-none"] == "No matches"
    assert form.fields["deal"].options["title_field"] == "name"
    assert form.fields["accounts"].options["title_field"] is None


def test_titles_given_with_the_values_show_in_a_prefilled_lookup() -> None:
    form = project_form()

    html = Elements(render(form, values={"deal": 9, "_titles": {"deal": "Big <deal>"}}))

    assert html.find("input", id="fl-deal")["value"] == "Big <deal>"
    assert html.find("input", name="deal", type="hidden")["value"] == "9"


def test_a_multi_lookup_is_chips_of_hidden_ids_and_posts_them_in_order() -> None:
    form = project_form({"id": 1, "version": 1, "accounts": [4, 2]})

    html = Elements(render(form))
    posted = [("accounts", "4"), ("accounts", "2"), ("accounts", "")]

    ids = [a["value"] for a in html.all("input", name="accounts", type="hidden")]
    assert ids == ["4", "2", ""]
    assert len(html.all("button", **{"data-fl-unpick": None})) == 2
    assert html.find("input", id="fl-accounts")["value"] == ""
    assert payload_from_form(form, posted)["accounts"] == [4, 2]
    assert payload_from_form(form, [("accounts", "")])["accounts"] == []


def test_file_fields_post_their_ids_and_an_emptied_field_clears() -> None:
    stored = {"id": "f1", "name": "brief <v2>.pdf", "size": 10, "content_type": "application/pdf"}
    form = project_form({"id": 1, "version": 1, "brief": stored, "photos": []})

    page = render(form)
    html = Elements(page)

    assert html.find("div", **{"data-fl-name": "brief"})["data-fl-upload"] == (
        "/api/envs/prod/files"
    )
    assert "brief &lt;v2&gt;.pdf" in page
    assert html.find("button", **{"data-fl-remove-file": None}) is not None
    assert payload_from_form(form, [("brief", ""), ("brief", "f1")])["brief"] == {"id": "f1"}
    assert payload_from_form(form, [("brief", "")])["brief"] is None
    assert payload_from_form(form, [("photos", ""), ("photos", "a"), ("photos", "b")])[
        "photos"
    ] == [{"id": "a"}, {"id": "b"}]


def test_the_widget_script_and_styles_sit_next_to_the_rules_script() -> None:
    script = (STATIC_DIR / "form_widgets.js").read_text(encoding="utf-8")
    rules = (STATIC_DIR / "form_rules.js").read_text(encoding="utf-8")

    assert (STATIC_DIR / "form_widgets.css").is_file()
    assert "form_widgets.js" in rules
    assert "innerHTML" not in script

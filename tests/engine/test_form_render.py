"""render_form: accessible HTML with labels, help, inline errors, kept values, CSRF; all escaped."""

from __future__ import annotations

import copy
from html.parser import HTMLParser
from typing import Any

from formloom.engine.entities import EntityDoc
from formloom.engine.forms import Form, build_form, payload_from_form, render_form
from formloom.engine.forms.rules import PROGRAM_VERSION
from formloom.engine.records.compiled import compile_entity
from tests.engine.test_form_samples import NOW, OPPORTUNITY, entities, layout, opportunity

RECORD = {
    "id": 12,
    "version": 3,
    "name": "Deal",
    "stage": "new",
    "amount": 1000,
    "discount": 5,
    "account": 5,
    "close_date": "2026-03-31",
    "is_key": True,
    "_titles": {"account": "ACME 科技"},
}


class Elements(HTMLParser):
    """Start tags with their attributes, and the text of the document."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **wanted: str | None) -> dict[str, str | None]:
        for name, attrs in self.tags:
            if name == tag and _has(attrs, {k.rstrip("_"): v for k, v in wanted.items()}):
                return attrs
        raise AssertionError(f"no <{tag} {wanted}>")

    def all(self, tag: str, **wanted: str | None) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag and _has(attrs, wanted)]


def _has(attrs: dict[str, str | None], wanted: dict[str, str | None]) -> bool:
    return all(key in attrs and attrs[key] == value for key, value in wanted.items())


def sample_form(record: dict[str, Any] | None = None, **kwargs: Any) -> Form:
    return build_form(
        kwargs.pop("entity", opportunity()),
        kwargs.pop("layout", layout()),
        field_modes=kwargs.pop("field_modes", {}),
        record=record,
        now=NOW,
        user_id=7,
        entities=entities(),
        env="prod",
        **kwargs,
    )


def render(form: Form, **kwargs: Any) -> str:
    options: dict[str, Any] = {"csrf_token": "tok-123", "action_url": "/records/opportunity"}
    options.update(kwargs)
    return render_form(form, **options)


def test_every_input_has_a_label_and_help_is_linked() -> None:
    html = Elements(render(sample_form()))

    label = html.find("label", for_="fl-name")
    assert label["id"] == "fl-name-label"
    name_input = html.find("input", id="fl-name")
    assert name_input["name"] == "name" and name_input["type"] == "text"
    assert name_input["placeholder"] == "Deal name"
    assert name_input["maxlength"] == "255"
    discount = html.find("input", id="fl-discount")
    assert discount["aria-describedby"] == "fl-discount-help"
    assert html.find("p", id="fl-discount-help") is not None
    assert "In percent" in html.text


def test_required_fields_are_marked_for_eyes_and_for_assistive_technology() -> None:
    html = Elements(render(sample_form()))

    name_input = html.find("input", id="fl-name")
    assert "required" in name_input and name_input["aria-required"] == "true"
    assert "required" not in html.find("input", id="fl-amount")
    markers = html.all("span", **{"data-fl-required-marker": None})
    assert sum("hidden" not in m for m in markers) == 2  # name and stage


def test_widgets_per_field_type() -> None:
    html = Elements(render(sample_form(RECORD)))

    assert html.find("input", id="fl-close_date")["type"] == "date"
    assert html.find("input", id="fl-close_date")["value"] == "2026-03-31"
    assert html.find("select", id="fl-stage") is not None
    lookup = html.find("input", id="fl-account")
    assert lookup["role"] == "combobox" and lookup["value"] == "ACME 科技"
    assert html.find("div", **{"data-fl-search": "/api/envs/prod/records/account?q="})
    assert html.find("input", type="hidden", name="account")["value"] == "5"
    assert "checked" in html.find("input", id="fl-is_key")
    assert html.find("textarea", id="fl-notes")["data-fl-rich-text"] is None
    assert html.find("select", name="region.province")["aria-label"] == "Region Province"
    assert html.find("button", **{"data-fl-add-row": None}) is not None
    assert html.find("template", **{"data-fl-row-template": None}) is not None


def test_csrf_token_version_and_action_are_in_the_form() -> None:
    html = Elements(render(sample_form(RECORD)))

    form = html.find("form")
    assert (form["method"], form["action"]) == ("post", "/records/opportunity")
    assert html.find("input", name="csrf_token")["value"] == "tok-123"
    assert html.find("input", name="version")["value"] == "3"


def test_errors_show_under_their_field_and_the_rest_at_the_top() -> None:
    errors = [
        {"path": "/name", "code": "required", "message": "Name is required"},
        {"path": "/lines/0/qty", "code": "required", "message": "Qty is required"},
        {"path": "", "code": "duplicate", "message": "A similar deal exists"},
    ]

    html = Elements(render(sample_form(), errors=errors))

    name_input = html.find("input", id="fl-name")
    assert name_input["aria-invalid"] == "true"
    assert name_input["aria-describedby"] == "fl-name-error"
    assert html.find("p", id="fl-name-error") is not None
    assert html.find("p", id="fl-lines-error") is not None
    assert html.find("div", role="alert") is not None
    text = "".join(html.text)
    assert "Name is required" in text and "A similar deal exists" in text


def test_values_are_kept_after_a_failed_save() -> None:
    form = sample_form(RECORD)
    posted = [
        ("csrf_token", "tok"),
        ("version", "3"),
        ("name", ""),
        ("stage", "new"),
        ("discount", "30"),
        ("discount_reason", "Strategic account"),
        ("is_key", "false"),
        ("tags", "vip，key"),
        ("lines.0.product", "Router"),
        ("lines.0.qty", "2"),
    ]
    values = payload_from_form(form, posted)

    html = Elements(render(form, values=values, errors=[{"path": "/name", "message": "x"}]))

    assert html.find("input", id="fl-discount")["value"] == "30"
    assert "hidden" not in html.find("div", **{"data-fl-field": "discount_reason"})
    assert "Strategic account" in html.text
    assert html.find("input", id="fl-tags")["value"] == "vip, key"
    assert html.find("input", name="lines.0.qty")["value"] == "2"
    assert "checked" not in html.find("input", id="fl-is_key")


def test_a_value_locked_by_a_rule_shows_its_stored_value_after_a_post() -> None:
    form = sample_form(RECORD)
    values = payload_from_form(
        form, [("stage", "lost"), ("discount", "30"), ("lost_reason", "Late")]
    )

    html = Elements(render(form, values=values))

    assert html.find("option", value="lost")["selected"] is None
    assert html.find("input", id="fl-lost_reason")["value"] == "Late"
    discount = html.find("input", id="fl-discount")
    assert discount["value"] == "5" and "disabled" in discount
    assert "hidden" in html.find("div", **{"data-fl-field": "discount_reason"})


def test_payload_from_form_reads_each_widget() -> None:
    form = sample_form(RECORD, field_modes={"discount": "read_only"})

    payload = payload_from_form(
        form,
        [
            ("version", "3"),
            ("name", " Deal "),
            ("amount", ""),
            ("is_key", "false"),
            ("is_key", "true"),
            ("account", "9"),
            ("region.province", "440000"),
            ("region.city", "440300"),
            ("region.district", ""),
            ("lines.rows", "1"),
            ("lines.0.id", "4"),
            ("lines.0.version", "2"),
            ("lines.0.qty", "3"),
            ("lines.1.qty", "1"),
            ("margin", "0.25"),
            ("discount", "99"),
            ("csrf_token", "tok"),
        ],
    )

    assert payload == {
        "version": 3,
        "name": " Deal ",
        "amount": None,
        "is_key": True,
        "account": 9,
        "region": {"province": "440000", "city": "440300"},
        "lines": [{"id": 4, "version": 2, "qty": "3"}, {"qty": "1"}],
        "margin": "0.25",
    }


def test_fields_hidden_by_a_rule_are_drawn_hidden_with_disabled_inputs() -> None:
    html = Elements(render(sample_form()))

    box = html.find("div", **{"data-fl-field": "lost_reason"})
    assert "hidden" in box
    assert "disabled" in html.find("input", id="fl-lost_reason")


def test_fields_read_only_for_the_viewer_are_text_without_inputs() -> None:
    html = Elements(render(sample_form(RECORD, field_modes={"amount": "read_only"})))

    assert html.all("input", id="fl-amount") == []
    assert html.find("div", id="fl-amount")["aria-labelledby"] == "fl-amount-label"
    assert "1000" in html.text


def test_labels_follow_the_form_language() -> None:
    zh = Elements(render(sample_form(lang="zh")))
    en = Elements(render(sample_form(lang="en")))

    assert "名称" in zh.text and "保存" in "".join(zh.text)
    assert zh.find("form")["lang"] == "zh-CN"
    assert "Name" in en.text and "Save" in "".join(en.text)


def test_user_content_is_escaped_everywhere() -> None:
    # given: a label, a help text, a choice, a value and an error that carry markup
    evil = "<script>alert(1)</script>"
    body = copy.deepcopy(OPPORTUNITY)
    body["fields"][0]["label"] = {"en": evil, "zh": evil}
    body["fields"][0]["help"] = {"en": evil, "zh": evil}
    body["fields"][1]["options"]["choices"][0]["label"] = {"en": evil, "zh": evil}
    entity = compile_entity(EntityDoc.model_validate(body))
    form = sample_form({**RECORD, "name": evil + '"><img src=x onerror=alert(1)>'}, entity=entity)

    # when
    html = render(form, errors=[{"path": "/name", "message": evil}], csrf_token='"><b>')

    # then
    assert "<script>" not in html.replace('<script type="application/json" data-fl-rules>', "")
    assert "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    rules_block = html.split("data-fl-rules>")[1].split("</script>")[0]
    assert "<" not in rules_block
    parsed = Elements(html)
    assert parsed.find("input", id="fl-name")["value"].startswith(evil)


def test_the_rules_program_is_embedded_for_the_browser() -> None:
    html = render(sample_form())

    assert f'"version": {PROGRAM_VERSION}' in html
    assert "data-fl-rules" in html


def test_related_lists_show_for_stored_records_only() -> None:
    stored = Elements(render(sample_form(RECORD)))
    new = Elements(render(sample_form()))

    section = stored.find("section", **{"class": "fl-related"})
    assert section["data-fl-related"] == (
        "/api/envs/prod/records/task?opportunity=12&limit=10&fields=subject,due_date&sort=-due_date"
    )
    assert new.all("section", **{"class": "fl-related"}) == []

"""Server-side HTML of a form (Jinja2, autoescaped): accessible inputs, help, inline errors.

Every label, help text, choice and value is escaped (Jinja2 autoescape; the
rules JSON goes through ``tojson``, which escapes ``<``, ``>``, ``&`` and ``'``).
The page that shows the form loads ``static/form_rules.js`` (:data:`FORM_RULES_JS`),
which reads the ``<script type="application/json" data-fl-rules>`` block and
updates the form as the user types.

Fields hidden or locked by a rule are drawn with their inputs ``disabled``
(so the browser does not post them, and the server ignores them anyway);
fields the viewer cannot edit are drawn as text, without inputs.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

import jinja2

from formloom.engine.forms.build import Form, FormField
from formloom.engine.forms.rules import RuleState
from formloom.engine.forms.widgets import choice_list

STATIC_DIR = Path(__file__).parent / "static"
#: The browser's copy of the rules evaluator (serve it with the staff web app's assets).
FORM_RULES_JS = STATIC_DIR / "form_rules.js"
_TEMPLATES = Path(__file__).parent / "templates"
#: Controls with several inputs: their label names a group, not one input.
_GROUPS = frozenset(("region", "address", "geo", "grid", "signature"))

_TEXTS = {
    "en": {
        "save": "Save",
        "fix": "The record was not saved. Please correct the following:",
        "choose": "— Choose —",
        "search": "Type to search…",
        "tags_hint": "tag1, tag2",
        "yes": "Yes",
        "no": "No",
        "province": "Province",
        "city": "City",
        "district": "District",
        "street": "Street",
        "postcode": "Postcode",
        "lat": "Latitude",
        "lng": "Longitude",
        "add_row": "Add row",
        "remove_row": "Remove row",
        "remove": "Remove",
        "no_match": "No matches",
        "row_error": "Row {n}: {message}",
        "actions": "Actions",
        "rows": "{n} rows",
        "signed": "Signed",
    },
    "zh": {
        "save": "保存",
        "fix": "记录未保存，请修正以下问题：",
        "choose": "— 请选择 —",
        "search": "输入以搜索…",
        "tags_hint": "标签1, 标签2",
        "yes": "是",
        "no": "否",
        "province": "省",
        "city": "市",
        "district": "区/县",
        "street": "详细地址",
        "postcode": "邮编",
        "lat": "纬度",
        "lng": "经度",
        "add_row": "添加一行",
        "remove_row": "删除此行",
        "remove": "移除",
        "no_match": "没有匹配的记录",
        "row_error": "第 {n} 行：{message}",
        "actions": "操作",
        "rows": "{n} 行",
        "signed": "已签名",
    },
}


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        auto_reload=False,
    )


def render_form(
    form: Form,
    *,
    values: Mapping[str, Any] | None = None,
    errors: Sequence[Mapping[str, str]] = (),
    csrf_token: str,
    action_url: str,
    lang: str | None = None,
) -> str:
    """The form as an HTML ``<form>`` element.

    ``values``: what to show (JSON values; after a failed save, what the user
    posted, so nothing they typed is lost); None shows the form's initial
    values. ``errors``: problems as ``{path, code, message}`` (JSON pointers):
    each is shown under its field (``/lines/0/qty`` under ``lines``), the rest
    at the top. ``lang`` (default: the form's) picks the interface texts; the
    labels were chosen when the form was built.
    """
    lang = lang or form.lang
    texts = _TEXTS["zh" if lang == "zh" else "en"]
    state = form.rules.evaluate(values or {})
    shown_values = dict(form.initial)
    if values is not None:
        for name in form.rules.live:
            if name in values and not state.ignored(name):
                shown_values[name] = values[name]
    by_field, form_errors = _errors_by_field(form, errors)
    titles = _titles(form.initial, values)
    fields = {
        name: _field_view(
            form,
            form_field,
            shown_values.get(name),
            state,
            by_field.get(name, []),
            titles,
            texts,
        )
        for name, form_field in form.fields.items()
    }
    version = (values or {}).get("version", form.initial.get("version"))
    template = _environment().get_template("form.html")
    return template.render(
        action_url=action_url,
        csrf_token=csrf_token,
        html_lang="zh-CN" if lang == "zh" else "en",
        version=None if form.is_new else version,
        form_errors=form_errors,
        tabs=[
            {
                "name": tab.name,
                "label": tab.label,
                "sections": [
                    {
                        "name": section.name,
                        "label": section.label,
                        "columns": section.columns,
                        "collapsible": section.collapsible,
                        "collapsed": section.collapsed,
                        "fields": [fields[name] for name in section.fields],
                    }
                    for section in tab.sections
                ],
            }
            for tab in form.tabs
        ],
        related_lists=[] if form.is_new else _related(form),
        rules=form.ui_schema["rules"],
        t=texts,
    )


def _titles(initial: Mapping[str, Any], values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Lookup titles by field: the stored record's, then those given with ``values``
    (a new record's form prefilled with a lookup shows that record's title)."""
    titles: dict[str, Any] = {}
    for source in (initial, values or {}):
        found = source.get("_titles")
        if isinstance(found, Mapping):
            titles.update(found)
    return titles


def _errors_by_field(
    form: Form, errors: Sequence[Mapping[str, str]]
) -> tuple[dict[str, list[tuple[list[str], str]]], list[str]]:
    """Each error under its field, with the rest of its path (``["0", "qty"]``), or at the top."""
    by_field: dict[str, list[tuple[list[str], str]]] = {}
    rest = []
    for error in errors:
        path = str(error.get("path", ""))
        steps = [
            step.replace("~1", "/").replace("~0", "~")
            for step in (path.split("/")[1:] if path.startswith("/") else [])
        ]
        name = steps[0] if steps else ""
        message = str(error.get("message", ""))
        if name in form.fields:
            by_field.setdefault(name, []).append((steps[1:], message))
        else:
            rest.append(message)
    return by_field, rest


def _cell_errors(
    form_field: FormField, errors: list[tuple[list[str], str]], texts: Mapping[str, str]
) -> tuple[dict[str, list[str]], list[str]]:
    """A grid's errors by row cell (``"1.qty"``), and the grid's summary.

    A cell's error shows next to the cell; the summary under the grid names the
    row too, so a row scrolled out of sight is not missed.
    """
    columns = {c["field"] for c in form_field.options.get("columns", [])}
    cells: dict[str, list[str]] = {}
    summary = []
    for steps, message in errors:
        row = steps[0] if steps and steps[0].isdigit() else None
        if row is not None and len(steps) >= 2 and steps[1] in columns:
            cells.setdefault(f"{row}.{steps[1]}", []).append(message)
        if row is not None:
            message = texts["row_error"].format(n=int(row) + 1, message=message)
        summary.append(message)
    return cells, summary


def _field_view(
    form: Form,
    form_field: FormField,
    value: Any,
    state: RuleState,
    located: list[tuple[list[str], str]],
    titles: Mapping[str, Any],
    texts: Mapping[str, str],
) -> dict[str, Any]:
    name, lang = form_field.name, form.lang
    field_state = state.fields[name]
    widget = form_field.widget
    control = widget.control
    cell_errors: dict[str, list[str]] = {}
    if control == "grid" and form_field.editable:
        cell_errors, errors = _cell_errors(form_field, located, texts)
    else:
        errors = [message for _, message in located]
    shown = widget.shown(value, form_field.compiled, form.now.tzinfo or UTC)
    display = None
    if not form_field.editable:
        display = _display(form_field, value, titles, texts, lang)
    view: dict[str, Any] = {
        "name": name,
        "id": f"fl-{name}",
        "label": form_field.label,
        "help": form_field.help,
        "placeholder": form_field.placeholder,
        "span": form_field.span,
        "control": control,
        "options": defaultdict(lambda: None, form_field.options),
        "value": shown,
        "display": display,
        "group": control in _GROUPS or display is not None,
        "visible": field_state.visible,
        "required": field_state.required,
        "disabled": not field_state.visible or field_state.read_only,
        "errors": errors,
        "cell_errors": cell_errors,
        "max_length": getattr(form_field.compiled.options, "max_length", None)
        if control == "text"
        else None,
    }
    if control == "select":
        view["depends_on"] = None
        choices = list(form_field.options.get("choices", []))
        if name in state.choices:
            allowed = set(state.choices[name])
            choices = [c for c in choices if c["value"] in allowed]
            view["depends_on"] = form.rules.picklists[name][0]
        view["choices"] = choices
        view["selected"] = shown if isinstance(shown, list) else [shown]
    if control == "lookup":
        title = titles.get(name)
        view["lookup_text"] = str(title) if title is not None else ", ".join(shown)
    if control == "display":
        view["value"] = _display(form_field, value, titles, texts, lang)
    return view


def _display(
    form_field: FormField,
    value: Any,
    titles: Mapping[str, Any],
    texts: Mapping[str, str],
    lang: str,
) -> str:
    """A value as read-only text."""
    if value is None or value == "" or value == []:
        return "—"
    type_name = form_field.compiled.field_type.name
    if type_name in ("single_select", "multi_select"):
        labels = {c["value"]: c["label"] for c in choice_list(form_field.compiled, lang)}
        chosen = value if isinstance(value, list) else [value]
        return ", ".join(labels.get(str(v), str(v)) for v in chosen)
    if isinstance(value, bool):
        return texts["yes"] if value else texts["no"]
    if type_name in ("lookup", "user", "team") and titles.get(form_field.name) is not None:
        return str(titles[form_field.name])
    if type_name == "child_table" and isinstance(value, list):
        return texts["rows"].format(n=len(value))
    if type_name == "signature":
        return texts["signed"]
    if isinstance(value, dict):
        if "province" in value or "region" in value:
            region = value.get("region", value)
            parts = [
                str(region.get(f"{level}_name") or region.get(level) or "")
                for level in ("province", "city", "district")
            ]
            street = value.get("street", "")
            return " ".join(p for p in [*parts, street] if p)
        if "name" in value:
            return str(value["name"])
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(
            str(v.get("name") or v.get("id")) if isinstance(v, dict) else str(v) for v in value
        )
    return str(value)


def _related(form: Form) -> list[dict[str, Any]]:
    record_id = form.initial.get("id")
    return [
        {"label": related["label"], "url": str(related["url"]).replace("{id}", str(record_id))}
        for related in form.ui_schema["related_lists"]
    ]

"""The list page's filter builder: its rows and the structured filter JSON, both ways.

The builder is a plain GET form of rows ``f_field``/``f_op``/``f_value`` (and
``f_join``: and/or) that works without JavaScript. :func:`filter_from_rows` turns
the rows into the filter of ``docs/record-lists.md`` (values typed as text become
JSON by the field's kind) and :func:`rows_of` shows a filter as rows again. The
module also knows which operators each field offers (:func:`filter_fields`), the
choices suggested as values (:func:`choice_lists`) and how the planner's issues
read as sentences naming the condition and its field (:func:`condition_problems`).
Nothing here runs a query: the list's planner checks the filter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from formloom.engine.conditions import condition_fields, storage_kind, value_shape
from formloom.engine.errors import Issue
from formloom.engine.forms.widgets import choice_list
from formloom.engine.records.compiled import CompiledField
from formloom.engine.relative_dates import RELATIVE_NAMES
from formloom.platform.web import views
from formloom.platform.web.texts import texts_for

#: Operators the builder offers, in menu order; ``is_not_empty`` is ``is_empty`` false.
BUILDER_OPERATORS = (
    "eq",
    "ne",
    "contains",
    "starts_with",
    "gt",
    "ge",
    "lt",
    "le",
    "between",
    "in",
    "not_in",
    "is_empty",
    "is_not_empty",
)
#: Operators whose value is several values separated by commas.
LIST_OPERATORS = ("in", "not_in")
#: How a yes/no value may be typed (a boolean field's value, a bulk edit's text box).
TRUE_WORDS = ("true", "yes", "1", "是")
FALSE_WORDS = ("false", "no", "0", "否")
_CONDITION_PATH = re.compile(r"^/where(?:/(?:and|or)/(\d+))?")


def split_commas(text: str) -> list[str]:
    """The non-empty parts of ``text`` between commas, stripped."""
    return [part.strip() for part in text.split(",") if part.strip()]


def filter_from_rows(
    names: Sequence[str],
    ops: Sequence[str],
    texts: Sequence[str],
    *,
    join: str,
    fields: Mapping[str, CompiledField],
) -> dict[str, Any] | None:
    """The structured filter of the builder's rows (rows without a field are left out).

    Values are text as typed; they become JSON by the field's kind (see :func:`row_value`)
    and the list's planner checks them, so a wrong value is reported, never guessed.
    """
    tests = []
    for i, name in enumerate(names):
        name = name.strip()
        if not name:
            continue
        op = ops[i].strip() if i < len(ops) else "eq"
        text = texts[i] if i < len(texts) else ""
        tests.append(row_condition(name, op or "eq", text, fields.get(name)))
    if not tests:
        return None
    return {"or" if join == "or" else "and": tests}


def row_condition(name: str, op: str, text: str, compiled: CompiledField | None) -> dict[str, Any]:
    """One builder row as a condition test."""
    if op == "is_not_empty":
        return {"field": name, "op": "is_empty", "value": False}
    if op == "is_empty":
        return {"field": name, "op": "is_empty", "value": True}
    return {"field": name, "op": op, "value": row_value(op, text, compiled)}


def row_value(op: str, text: str, compiled: CompiledField | None) -> Any:
    """The JSON value of a row's text: lists split at commas, a ``between`` pair (an empty side
    is open), booleans and relative dates (``this_month``, ``last_n_days:7``) recognised."""
    if compiled is None:
        return text.strip()
    if op in LIST_OPERATORS or (op == "contains" and value_shape(compiled) == "list"):
        return [_scalar(part, compiled) for part in split_commas(text)]
    if op == "between":
        parts = text.split(",")
        if len(parts) != 2:
            return text.strip()
        return [_scalar(part, compiled) if part.strip() else None for part in parts]
    if op in ("contains", "starts_with"):
        return text.strip()
    return _scalar(text, compiled)


def _scalar(text: str, compiled: CompiledField) -> Any:
    text = text.strip()
    kind = storage_kind(compiled)
    if kind == "boolean" and text.lower() in (*TRUE_WORDS, *FALSE_WORDS):
        return text.lower() in TRUE_WORDS
    if kind in ("date", "datetime"):
        name, _, count = text.partition(":")
        if name in RELATIVE_NAMES:
            relative: dict[str, Any] = {"relative": name}
            if count.strip().isdigit():
                relative["n"] = int(count)
            return relative
    return text


@dataclass(frozen=True)
class BuilderRow:
    field: str
    op: str
    value: str


def rows_of(condition: Any) -> tuple[str, list[BuilderRow]] | None:
    """The builder's join and rows showing ``condition``; None when it has nested groups."""
    if condition is None:
        return "and", []
    if isinstance(condition, dict) and "field" in condition:
        condition = {"and": [condition]}
    if not isinstance(condition, dict) or len(condition) != 1:
        return None
    join, tests = next(iter(condition.items()))
    if join not in ("and", "or") or not isinstance(tests, list):
        return None
    rows = []
    for test in tests:
        if not isinstance(test, dict) or not {"field", "op"} <= set(test) or len(test) > 3:
            return None
        op, value = str(test["op"]), test.get("value")
        if op == "is_empty":
            op, value = ("is_empty" if value is not False else "is_not_empty"), None
        rows.append(BuilderRow(str(test["field"]), op, _value_text(value)))
    return join, rows


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_value_text(v) for v in value)
    if isinstance(value, dict) and "relative" in value:
        count = value.get("n")
        return f"{value['relative']}:{count}" if count is not None else str(value["relative"])
    return str(value)


@dataclass(frozen=True)
class FilterField:
    """A field the builder offers, with the operators its type allows."""

    name: str
    label: str
    ops: tuple[str, ...]


def filter_fields(view: views.EntityView, lang: str) -> list[FilterField]:
    """The fields the viewer may filter on (system fields last), with their operators."""
    hidden = view.access.hidden(view.compiled.name)
    offered = []
    user_first = {**view.compiled.fields, **condition_fields(view.compiled)}
    for name, compiled in user_first.items():
        # the field's own operators: a formula's follow its result type; a virtual field
        # (a multi-lookup's links) is offered when it has any
        allowed = set(compiled.operators)
        if name in hidden or not allowed:
            continue
        if value_shape(compiled) == "document":
            allowed = {"is_empty"}
        if "is_empty" in allowed:
            allowed.add("is_not_empty")
        ops = tuple(op for op in BUILDER_OPERATORS if op in allowed)
        offered.append(FilterField(name, compiled.label(lang), ops))
    return offered


def condition_problems(
    issues: Sequence[Issue], condition: Any, view: views.EntityView, lang: str
) -> list[str]:
    """The planner's issues with ``condition`` as sentences naming the builder's condition
    and its field."""
    t = texts_for(lang)
    shown = rows_of(condition)
    rows = shown[1] if shown else []
    hidden = view.access.hidden(view.compiled.name)
    fields = {n: f for n, f in condition_fields(view.compiled).items() if n not in hidden}
    problems = []
    for issue in issues:
        found = _CONDITION_PATH.match(issue.path)
        if found is None:
            problems.append(issue.message)
            continue
        index = int(found.group(1)) if found.group(1) else 0
        where = t["filter_condition_plain"].format(n=index + 1)
        if index < len(rows) and rows[index].field in fields:
            label = fields[rows[index].field].label(lang)
            where = t["filter_condition"].format(n=index + 1, field=label)
        said = t.get(f"issue_{issue.code}")
        detail = f"{said} ({issue.message})" if said else issue.message
        problems.append(f"{where}: {detail}")
    return problems


def choice_lists(view: views.EntityView, lang: str) -> dict[str, list[dict[str, str]]]:
    """The choices of each choice field the viewer may filter on (suggestions for a value)."""
    hidden = view.access.hidden(view.compiled.name)
    return {
        name: choice_list(compiled, lang)
        for name, compiled in view.compiled.fields.items()
        if name not in hidden and compiled.field_type.name in ("single_select", "multi_select")
    }

"""Form benchmark: build and render a 50-field form, median milliseconds.

``python -m bench.form_render [--rounds N]``

The form: an entity of 50 fields of 20 types (text, numbers, dates, selects,
lookups, region, tags, child table, formula…), a layout of 3 tabs and 8
sections with 12 conditional rules, 3 defaults and a dependent picklist, seen
by a viewer with one hidden and two read-only fields, for a stored record.
Timed, each as the median of ``--rounds`` runs after a warm-up:

- ``build + render``: :func:`build_form` then :func:`render_form` (the layout
  compiled once and reused, as when the platform keeps its published layouts);
- ``... (cold)``: the same with the layout compiled each time (a new document);
- ``build``, ``render``, ``evaluate_rules`` and ``effective_payload`` alone.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from formloom.engine.entities.model import EntityDoc
from formloom.engine.forms import (
    LayoutDoc,
    build_form,
    effective_payload,
    evaluate_rules,
    layout_kind,
    render_form,
)
from formloom.engine.meta import CheckContext
from formloom.engine.records.compiled import CompiledEntity, compile_entity

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
FIELD_COUNT = 50
_TYPES: list[tuple[str, dict[str, Any]]] = [
    ("text", {}),
    ("integer", {}),
    ("currency", {}),
    ("date", {}),
    ("single_select", {"choices": [{"value": v, "label": {"en": v, "zh": v}} for v in "abcd"]}),
    ("long_text", {}),
    ("boolean", {}),
    ("email", {}),
    ("phone", {}),
    ("percent", {}),
    ("datetime", {}),
    ("multi_select", {"choices": [{"value": v, "label": {"en": v, "zh": v}} for v in "xyz"]}),
    ("lookup", {"entity": "account"}),
    ("user", {}),
    ("region", {}),
    ("tags", {}),
    ("url", {}),
    ("decimal", {}),
    ("rating", {}),
    ("rich_text", {}),
]


def _label(text: str) -> dict[str, str]:
    return {"en": text.title(), "zh": f"字段{text}"}


def documents() -> tuple[dict[str, Any], dict[str, Any]]:
    """The entity and layout bodies (50 fields; a rule on every fourth field)."""
    fields = []
    for i in range(FIELD_COUNT - 2):
        type_name, options = _TYPES[i % len(_TYPES)]
        fields.append(
            {
                "name": f"f{i:02d}",
                "label": _label(f"f{i:02d}"),
                "type": type_name,
                "options": options,
            }
        )
    fields[0]["required"] = True
    fields.append(
        {
            "name": "lines",
            "label": _label("lines"),
            "type": "child_table",
            "options": {"entity": "line", "field": "parent"},
        }
    )
    fields.append(
        {
            "name": "total",
            "label": _label("total"),
            "type": "formula",
            "options": {"expression": "has(f02) ? f02 : 0.0", "result": "decimal"},
        }
    )
    entity = {"name": "deal", "label": _label("deal"), "fields": fields}
    names = [f["name"] for f in fields]
    sections = [names[i : i + 7] for i in range(0, len(names), 7)]
    tabs = [
        {
            "name": f"tab{t}",
            "label": _label(f"tab{t}"),
            "sections": [
                {"name": f"s{t}_{j}", "label": _label(f"s{t}_{j}"), "columns": 2, "fields": [
                    {"field": n} for n in chunk
                ]}
                for j, chunk in enumerate(sections[t * 3 : t * 3 + 3])
            ],
        }
        for t in range(3)
    ]  # fmt: skip
    rules = [
        {"fields": [f"f{i:02d}"], "visible_when": {"field": "f04", "op": "in", "value": ["a", "b"]}}
        for i in range(5, 45, 4)
    ]
    rules.append({"fields": ["f07"], "required_when": {"field": "f01", "op": "gt", "value": 10}})
    rules.append({"fields": ["f09"], "read_only_when": {"field": "f06", "op": "eq", "value": True}})
    layout = {
        "name": "deal_edit",
        "label": _label("deal"),
        "entity": "deal",
        "tabs": tabs,
        "rules": rules,
        "defaults": {
            "f03": {"expression": "today()"},
            "f13": {"current_user": True},
            "f24": {"value": "a"},
        },
        "dependent_picklists": [
            {"parent": "f04", "child": "f24", "choices": {"a": ["a", "b"], "b": ["c"]}}
        ],
    }
    return entity, layout


def setup() -> tuple[CompiledEntity, dict[str, CompiledEntity], LayoutDoc, dict[str, Any]]:
    entity_body, layout_body = documents()
    line = {
        "name": "line",
        "label": _label("line"),
        "fields": [
            {
                "name": "parent",
                "label": _label("parent"),
                "type": "lookup",
                "options": {"entity": "deal", "on_delete": "cascade"},
            },
            {"name": "qty", "label": _label("qty"), "type": "integer"},
        ],
    }
    account = {"name": "account", "label": _label("account"), "fields": []}
    bodies = {"deal": entity_body, "line": line, "account": account}
    context = CheckContext(published={"entity": bodies})
    layout = layout_kind.validate(layout_body, context)
    entities = {name: compile_entity(EntityDoc.model_validate(b)) for name, b in bodies.items()}
    record = {"id": 1, "version": 2, "f00": "Deal", "f01": 12, "f04": "a", "f06": False}
    return entities["deal"], entities, layout, record


def median_ms(action: Callable[[], object], rounds: int) -> float:
    for _ in range(min(20, rounds)):
        action()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.form_render", description=__doc__)
    parser.add_argument("--rounds", type=int, default=300, help="timed runs per figure")
    args = parser.parse_args(argv)
    entity, entities, layout, record = setup()
    modes = {"f10": "hidden", "f11": "read_only", "f12": "read_only"}

    def build(chosen: LayoutDoc = layout) -> Any:
        return build_form(
            entity,
            chosen,
            field_modes=modes,
            record=record,
            now=NOW,
            user_id=7,
            entities=entities,
            env="prod",
            lang="zh",
        )

    form = build()
    html = render_form(form, csrf_token="token", action_url="/records/deal/1")
    payload = {"f00": "Deal 2", "f01": 5, "f04": "c", "f05": "x", "f24": "c"}
    figures = {
        "build + render": lambda: render_form(build(), csrf_token="t", action_url="/x"),
        "build + render (cold)": lambda: render_form(
            build(layout.model_copy()), csrf_token="t", action_url="/x"
        ),
        "build": build,
        "render": lambda: render_form(form, csrf_token="t", action_url="/x"),
        "evaluate_rules": lambda: evaluate_rules(form, payload),
        "effective_payload": lambda: effective_payload(form, payload),
    }
    print(
        f"form: {len(entity.fields)} fields, {len(form.fields)} shown, "
        f"{len(layout.rules)} rules, HTML {len(html) / 1024:.0f} KiB"
    )
    print(f"{'step':<24} {'median ms':>10}")
    for name, action in figures.items():
        print(f"{name:<24} {median_ms(action, args.rounds):>10.2f}")


if __name__ == "__main__":
    main()

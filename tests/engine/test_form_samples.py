"""Sample entities and layout shared by the form tests (and a check that they publish cleanly)."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from formloom.engine.entities import EntityDoc
from formloom.engine.forms import LayoutDoc, layout_kind
from formloom.engine.meta import CheckContext, document_kinds
from formloom.engine.records.compiled import CompiledEntity, compile_entity

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=SHANGHAI)


def label(en: str, zh: str | None = None) -> dict[str, str]:
    return {"en": en, "zh": zh or en}


def field(name: str, type_: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": label(name.replace("_", " ").title()), "type": type_, **extra}


def choices(*values: str) -> dict[str, Any]:
    return {"choices": [{"value": v, "label": label(v.title(), f"{v}（中）")} for v in values]}


ACCOUNT = {"name": "account", "label": label("Account", "客户"), "fields": [field("name", "text")]}
OPPORTUNITY = {
    "name": "opportunity",
    "label": label("Opportunity", "商机"),
    "title_field": "name",
    "fields": [
        field("name", "text", required=True, label=label("Name", "名称")),
        field("stage", "single_select", required=True, options=choices("new", "won", "lost")),
        field("amount", "currency"),
        field("discount", "percent"),
        field("discount_reason", "long_text"),
        field("lost_reason", "text"),
        field("close_date", "date"),
        field("product_line", "single_select", options=choices("hardware", "software")),
        field("product", "single_select", options=choices("router", "switch", "crm", "erp")),
        field("owner", "user"),
        field("account", "lookup", options={"entity": "account"}),
        field("region", "region"),
        field("tags", "tags"),
        field("notes", "rich_text"),
        field(
            "lines", "child_table", options={"entity": "opportunity_line", "field": "opportunity"}
        ),
        field("is_key", "boolean"),
        field("margin", "decimal"),
        field(
            "next_step",
            "text",
            required_when={"field": "stage", "op": "eq", "value": "won"},
        ),
        field(
            "net",
            "formula",
            options={"expression": "has(amount) ? amount : 0.0", "result": "decimal"},
        ),
    ],
}
LINE = {
    "name": "opportunity_line",
    "label": label("Line", "明细"),
    "fields": [
        field(
            "opportunity",
            "lookup",
            required=True,
            options={"entity": "opportunity", "on_delete": "cascade"},
        ),
        field("product", "text"),
        field("qty", "integer", required=True),
    ],
}
TASK = {
    "name": "task",
    "label": label("Task", "任务"),
    "fields": [
        field("subject", "text"),
        field("due_date", "date"),
        field("opportunity", "lookup", options={"entity": "opportunity"}),
        field("notes", "long_text"),
    ],
}
ROLES = {
    "sales_rep": {"name": "sales_rep", "label": label("Sales rep", "销售")},
    "sales_manager": {"name": "sales_manager", "label": label("Sales manager", "销售经理")},
}


def placement(name: str, **extra: Any) -> dict[str, Any]:
    return {"field": name, **extra}


def layout_body(**overrides: Any) -> dict[str, Any]:
    """The opportunity edit layout the tests start from."""
    body: dict[str, Any] = {
        "name": "opportunity_edit",
        "label": label("Opportunity", "商机"),
        "entity": "opportunity",
        "tabs": [
            {
                "name": "main",
                "label": label("Main", "基本信息"),
                "sections": [
                    {
                        "name": "basics",
                        "label": label("Basics", "基本"),
                        "columns": 2,
                        "fields": [
                            placement("name", placeholder={"en": "Deal name", "zh": "商机名称"}),
                            placement("stage"),
                            placement("amount"),
                            placement("close_date"),
                            placement("account"),
                            placement("owner"),
                            placement("next_step"),
                        ],
                    },
                    {
                        "name": "pricing",
                        "label": label("Pricing", "价格"),
                        "columns": 2,
                        "collapsible": True,
                        "fields": [
                            placement("discount", help={"en": "In percent", "zh": "百分比"}),
                            placement("discount_reason", span=2),
                            placement("margin"),
                            placement("net"),
                        ],
                    },
                    {
                        "name": "product",
                        "columns": 2,
                        "fields": [placement("product_line"), placement("product")],
                    },
                    {"name": "loss", "columns": 1, "fields": [placement("lost_reason")]},
                ],
            },
            {
                "name": "details",
                "label": label("Details", "详情"),
                "sections": [
                    {
                        "name": "more",
                        "columns": 3,
                        "fields": [
                            placement("region"),
                            placement("tags"),
                            placement("is_key"),
                            placement("notes", span=3),
                            placement("lines", span=3),
                        ],
                    }
                ],
            },
        ],
        "rules": [
            {
                "fields": ["discount_reason"],
                "visible_when": {"field": "discount", "op": "gt", "value": 20},
                "required_when": {"field": "discount", "op": "gt", "value": 20},
            },
            {
                "fields": ["lost_reason"],
                "visible_when": {"field": "stage", "op": "eq", "value": "lost"},
                "required_when": {"field": "stage", "op": "eq", "value": "lost"},
            },
            {
                "fields": ["amount", "discount"],
                "read_only_when": {"field": "stage", "op": "in", "value": ["won", "lost"]},
            },
        ],
        "defaults": {
            "stage": {"value": "new"},
            "close_date": {"expression": "today() + duration('720h')"},
            "owner": {"current_user": True},
        },
        "dependent_picklists": [
            {
                "parent": "product_line",
                "child": "product",
                "choices": {"hardware": ["router", "switch"], "software": ["crm", "erp"]},
            }
        ],
        "related_lists": [
            {
                "entity": "task",
                "columns": ["subject", "due_date"],
                "sort": [{"field": "due_date", "direction": "desc"}],
            }
        ],
    }
    body.update(overrides)
    return copy.deepcopy(body)


def context(**extra_entities: dict[str, Any]) -> CheckContext:
    entities = {"account": ACCOUNT, "opportunity": OPPORTUNITY, "opportunity_line": LINE}
    return CheckContext(
        published={"entity": {**entities, "task": TASK, **extra_entities}, "role": ROLES}
    )


def entities() -> dict[str, CompiledEntity]:
    bodies = {
        "account": ACCOUNT,
        "opportunity": OPPORTUNITY,
        "opportunity_line": LINE,
        "task": TASK,
    }
    return {name: compile_entity(EntityDoc.model_validate(b)) for name, b in bodies.items()}


def opportunity() -> CompiledEntity:
    return entities()["opportunity"]


def layout(**overrides: Any) -> LayoutDoc:
    return layout_kind.validate(layout_body(**overrides), context())


def test_sample_entities_publish_cleanly() -> None:
    ctx = context()
    for body in (ACCOUNT, OPPORTUNITY, LINE, TASK):
        document_kinds.get("entity").validate(body, ctx)


def test_sample_layout_publishes_cleanly() -> None:
    assert layout().name == "opportunity_edit"

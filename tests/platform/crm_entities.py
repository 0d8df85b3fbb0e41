"""Entities the records tests share: a small CRM with every core field type and lookups.

- ``account``: unique required name, a choice, contact fields.
- ``deal``: one field of every core type; ``account`` lookup (on_delete restrict).
- ``contact``: ``account`` lookup with on_delete set_null.
- ``task``: ``deal`` lookup with on_delete cascade; ``parent`` task (cascade, self).
- ``quote``: ``deal`` lookup with on_delete restrict (blocks a cascade from account).
"""

from __future__ import annotations

from typing import Any

from formloom.platform.database import Workspace
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument

ENV = "production"


def label(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh}


def field(name: str, type_: str = "text", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "label": label(name.replace("_", " ").title(), name),
        "type": type_,
        **extra,
    }


def choices(*values: str) -> dict[str, Any]:
    return {"choices": [{"value": v, "label": label(v, v)} for v in values]}


def lookup(name: str, target: str, on_delete: str | None = None, **extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"entity": target}
    if on_delete:
        options["on_delete"] = on_delete
    return field(name, "lookup", options=options, **extra)


ACCOUNT = {
    "name": "account",
    "label": label("Account", "客户"),
    "title_field": "name",
    "fields": [
        {
            "name": "name",
            "label": label("Company", "公司名称"),
            "type": "text",
            "required": True,
            "unique": True,
            "options": {"max_length": 20},
        },
        field("level", "single_select", options=choices("a", "b", "c"), default="c"),
        field("phone", "phone"),
        field("code"),
        field("region"),
    ],
    "indexes": [{"name": "by_code_region", "fields": ["code", "region"], "unique": True}],
}

DEAL = {
    "name": "deal",
    "label": label("Deal", "商机"),
    "fields": [
        {"name": "title", "label": label("Title", "标题"), "type": "text", "required": True},
        field("notes", "long_text"),
        field("quantity", "integer", options={"min": 0}),
        {
            "name": "amount",
            "label": label("Amount", "金额"),
            "type": "decimal",
            "options": {"precision": 12, "scale": 2},
        },
        field("price", "currency"),
        field("probability", "percent"),
        field("won", "boolean"),
        field("close_date", "date"),
        field("closed_at", "datetime"),
        {
            "name": "stage",
            "label": label("Stage", "阶段"),
            "type": "single_select",
            "options": choices("open", "won", "lost"),
            "default": "open",
        },
        field("tags", "multi_select", options=choices("hot", "cold", "vip")),
        field("email", "email"),
        {"name": "phone", "label": label("Phone", "电话"), "type": "phone"},
        field("website", "url"),
        {**lookup("account", "account"), "label": label("Account", "客户")},
    ],
}

CONTACT = {
    "name": "contact",
    "label": label("Contact", "联系人"),
    "fields": [field("name", required=True), lookup("account", "account", "set_null")],
}

TASK = {
    "name": "task",
    "label": label("Task", "任务"),
    "fields": [
        field("subject"),
        lookup("deal", "deal", "cascade"),
        lookup("parent", "task", "cascade"),
    ],
}

QUOTE = {
    "name": "quote",
    "label": label("Quote", "报价"),
    "fields": [field("number"), lookup("deal", "deal", "restrict")],
}

ALL = (ACCOUNT, DEAL, CONTACT, TASK, QUOTE)


def publish(workspace: Workspace, *bodies: dict[str, Any], env: str = ENV) -> None:
    """Publish entity documents in one batch (lookups in any order)."""
    documents = [SourceDocument("entity", body, f"{body['name']}.json") for body in bodies]
    MetaStore(workspace).apply(env, documents, PublishOptions())


#: A deal with a value in every field, as a client sends it.
FULL_DEAL = {
    "title": "  Big deal  ",
    "notes": "  keep the spaces\n",
    "quantity": "12",
    "amount": 1234.5,
    "price": "99.99",
    "probability": 12.5,
    "won": False,
    "close_date": "2026-03-31",
    "closed_at": "2026-03-31T09:30:00+08:00",
    "stage": "won",
    "tags": ["vip", "hot", "vip"],
    "email": "Sales@Example.COM",
    "phone": "138 0013 8000",
    "website": "https://example.com/a?b=c",
}

#: The same deal as the API returns it (normalised values).
FULL_DEAL_JSON = {
    "title": "Big deal",
    "notes": "  keep the spaces\n",
    "quantity": 12,
    "amount": 1234.5,
    "price": 99.99,
    "probability": 12.5,
    "won": False,
    "close_date": "2026-03-31",
    "closed_at": "2026-03-31T01:30:00+00:00",
    "stage": "won",
    "tags": ["hot", "vip"],
    "email": "Sales@example.com",
    "phone": "+8613800138000",
    "website": "https://example.com/a?b=c",
}

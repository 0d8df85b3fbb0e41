"""Conditions on multi-lookups and formulas in memory, and Chinese messages (no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from formloom.engine.conditions import ConditionInvalid, condition_from_params, parse_condition
from formloom.engine.entities import EntityDoc
from formloom.engine.fields import field_types
from formloom.engine.fields.base import BASIC_OPERATORS, ORDERED_OPERATORS, TEXT_OPERATORS
from formloom.engine.records.compiled import CompiledEntity, compile_entity

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
LABEL = {"zh": "字段", "en": "Field"}


def field(name: str, type_: str = "text", **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": LABEL, "type": type_, **extra}


def formula(name: str, result: str, expression: str) -> dict[str, Any]:
    return field(name, "formula", options={"expression": expression, "result": result})


ARTICLE: CompiledEntity = compile_entity(
    EntityDoc.model_validate(
        {
            "name": "article",
            "label": LABEL,
            "fields": [
                field("title"),
                field("words", "integer"),
                field("tags", "multi_lookup", options={"entity": "tag"}),
                formula("headline", "text", "title"),
                formula("long", "boolean", "words > 1000"),
                formula("double", "integer", "words * 2"),
                formula("ratio", "decimal", "double(words) / 3.0"),
                formula("day", "date", "timestamp('2026-01-01T00:00:00Z')"),
            ],
        }
    )
)


def matches(raw: Any, record: dict[str, Any]) -> bool:
    return parse_condition(raw, ARTICLE, now=NOW, tz=SHANGHAI).matches(record)


@pytest.mark.parametrize(
    ("raw", "tags", "expected"),
    [
        ({"field": "tags", "op": "contains", "value": 3}, [1, 3], True),
        ({"field": "tags", "op": "contains", "value": 3}, [1], False),
        ({"field": "tags", "op": "contains", "value": [2, 3]}, [3], True),
        ({"field": "tags", "op": "in", "value": [2, 5]}, [5, 1], True),
        ({"field": "tags", "op": "in", "value": [2, 5]}, [], False),
        ({"field": "tags", "op": "not_in", "value": [2]}, [], True),
        ({"field": "tags", "op": "not_in", "value": [2]}, [2, 4], False),
        ({"field": "tags", "op": "is_empty", "value": True}, [], True),
        ({"field": "tags", "op": "is_empty", "value": True}, None, True),
        ({"field": "tags", "op": "is_empty", "value": False}, [7], True),
    ],
)
def test_multi_lookup_tests_in_memory(raw: dict[str, Any], tags: Any, expected: bool) -> None:
    assert matches(raw, {"tags": tags}) is expected


def test_multi_lookup_refuses_other_operators_and_non_ids() -> None:
    with pytest.raises(ConditionInvalid) as caught:
        parse_condition(
            {
                "and": [
                    {"field": "tags", "op": "eq", "value": 1},
                    {"field": "tags", "op": "contains", "value": "x"},
                    {"field": "tags", "op": "in", "value": [1, 0]},
                ]
            },
            ARTICLE,
            now=NOW,
            tz=SHANGHAI,
        )

    assert [(i.path, i.code) for i in caught.value.issues] == [
        ("/and/0/op", "operator_not_allowed"),
        ("/and/1/value", "type"),
        ("/and/2/value/1", "invalid_id"),
    ]


def test_formula_operators_follow_the_result_type() -> None:
    fields = ARTICLE.fields

    assert fields["headline"].operators == TEXT_OPERATORS
    assert fields["long"].operators == BASIC_OPERATORS
    assert fields["double"].operators == ORDERED_OPERATORS
    assert fields["ratio"].operators == ORDERED_OPERATORS
    assert fields["day"].operators == ORDERED_OPERATORS
    assert field_types.get("formula").operators == ORDERED_OPERATORS  # the class default
    assert fields["title"].operators == field_types.get("text").operators


def test_text_formulas_match_text_operators_in_memory() -> None:
    assert matches({"field": "headline", "op": "contains", "value": "RM"}, {"headline": "a crm"})
    assert matches({"field": "headline", "op": "starts_with", "value": "A"}, {"headline": "a crm"})
    assert not matches({"field": "long", "op": "eq", "value": True}, {"long": False})


def test_messages_follow_the_language() -> None:
    raw = {"and": [{"field": "nope", "op": "eq", "value": 1}, {"field": "words", "op": "xx"}]}

    with pytest.raises(ConditionInvalid) as zh:
        parse_condition(raw, ARTICLE, now=NOW, tz=SHANGHAI, lang="zh")
    with pytest.raises(ConditionInvalid) as en:
        parse_condition(raw, ARTICLE, now=NOW, tz=SHANGHAI)
    with pytest.raises(ConditionInvalid) as params:
        condition_from_params(
            [("words__ge", "many")], ARTICLE, now=NOW, tz=SHANGHAI, at="/query", lang="zh"
        )

    assert [i.message.split("；")[0] for i in zh.value.issues] == [
        "`nope` 不是 `article` 的字段",
        "不认识的运算符 `xx`",
    ]
    assert en.value.issues[0].message.startswith("`nope` is not a field of `article`")
    assert [(i.path, i.code) for i in zh.value.issues] == [
        (i.path, i.code) for i in en.value.issues
    ]
    assert params.value.issues[0].message.startswith("字段 `words`：")

"""Structured conditions: parsing with every issue reported, relative dates, in-memory matching.

Pure tests (no database). The platform's tests check that the SQL form of the
same conditions selects exactly the records ``matches`` accepts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from formloom.engine.conditions import (
    MAX_DEPTH,
    AllOf,
    AnyOf,
    Condition,
    ConditionInvalid,
    FieldTest,
    Not,
    Range,
    condition_from_params,
    parse_condition,
)
from formloom.engine.entities import EntityDoc
from formloom.engine.records.compiled import CompiledEntity, compile_entity
from formloom.engine.relative_dates import days_of, resolve_period, timezone_named

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: Sunday 15 March 2026, 20:00 in Shanghai.
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
LABEL = {"zh": "字段", "en": "Field"}


def field(name: str, type_: str = "text", **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": LABEL, "type": type_, **extra}


def choices(*values: str) -> dict[str, Any]:
    return {"choices": [{"value": v, "label": {"en": v}} for v in values]}


OPPORTUNITY: CompiledEntity = compile_entity(
    EntityDoc.model_validate(
        {
            "name": "opportunity",
            "label": LABEL,
            "title_field": "name",
            "fields": [
                field("name"),
                field("notes", "long_text"),
                field("amount", "currency"),
                field("quantity", "integer"),
                field("stage", "single_select", options=choices("open", "won", "lost")),
                field("tags", "multi_select", options=choices("a", "b", "c")),
                field("won", "boolean"),
                field("close_date", "date"),
                field("closed_at", "datetime"),
                field("account", "lookup", options={"entity": "account"}),
                field("email", "email"),
                field("labels", "tags"),
                field("address", "address"),
                field("location", "geo"),
            ],
        }
    )
)


def parse(raw: Any, *, now: datetime = NOW) -> Condition:
    return parse_condition(raw, OPPORTUNITY, now=now, tz=SHANGHAI)


def params(*pairs: tuple[str, str], now: datetime = NOW) -> Condition | None:
    return condition_from_params(pairs, OPPORTUNITY, now=now, tz=SHANGHAI, at="/query")


def problems(raw: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConditionInvalid) as exc:
        parse(raw)
    return [(i.path, i.code) for i in exc.value.issues]


def param_problems(*pairs: tuple[str, str]) -> list[tuple[str, str]]:
    with pytest.raises(ConditionInvalid) as exc:
        params(*pairs)
    return [(i.path, i.code) for i in exc.value.issues]


def cond(field_name: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"field": field_name, "op": op, "value": value}


# -- parsing --------------------------------------------------------------------------------------


def test_a_condition_parses_into_groups_and_normalised_tests() -> None:
    parsed = parse(
        {
            "and": [
                cond("stage", "eq", "won"),
                {"or": [cond("amount", "ge", "100000"), {"not": cond("name", "contains", "测试")}]},
            ]
        }
    )

    assert isinstance(parsed, AllOf)
    stage, either = parsed.conditions
    assert stage == FieldTest("stage", "eq", "won", "string", "text", OPPORTUNITY.fields["stage"])
    assert isinstance(either, AnyOf)
    amount, negated = either.conditions
    assert isinstance(amount, FieldTest)
    assert (amount.op, amount.value) == ("ge", Decimal(100000))
    assert isinstance(negated, Not)


def test_values_go_through_the_field_types() -> None:
    parsed = parse(
        {
            "and": [
                cond("quantity", "in", ["1", 2, 2]),
                cond("close_date", "between", ["2026-01-01", "2026-03-31"]),
                cond("closed_at", "gt", "2026-03-01T08:00:00+08:00"),
                cond("email", "eq", "Ann@Example.COM"),
            ]
        }
    )

    assert isinstance(parsed, AllOf)
    quantity, close_date, closed_at, email = parsed.conditions
    assert isinstance(quantity, FieldTest) and quantity.value == (1, 2)
    assert isinstance(close_date, FieldTest)
    assert close_date.value == Range(date(2026, 1, 1), date(2026, 3, 31))
    assert isinstance(closed_at, FieldTest)
    assert closed_at.value == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    assert isinstance(email, FieldTest) and email.value == "Ann@example.com"


def test_every_problem_is_reported_with_its_json_pointer() -> None:
    found = problems(
        {
            "and": [
                cond("nope", "eq", 1),
                cond("amount", "contains", "1"),
                cond("amount", "ge", "abc"),
                cond("stage", "eq", "maybe"),
                cond("stage", "like", "won"),
                cond("quantity", "in", []),
                cond("quantity", "in", [1, "x", 3]),
                cond("amount", "between", [5]),
                cond("amount", "between", [9, 1]),
                cond("won", "is_empty", "yes"),
                {"field": "stage", "op": "eq"},
                {"field": "stage", "op": "eq", "value": "won", "extra": 1},
                {"or": "not a list"},
                {"and": [], "field": "stage"},
                "stage = won",
                cond("amount", "eq", None),
                cond("name", "eq", ""),
            ]
        }
    )

    assert found == [
        ("/and/0/field", "unknown_field"),
        ("/and/1/op", "operator_not_allowed"),
        ("/and/2/value", "type"),
        ("/and/3/value", "unknown_choice"),
        ("/and/4/op", "unknown_operator"),
        ("/and/5/value", "type"),
        ("/and/6/value/1", "type"),
        ("/and/7/value", "type"),
        ("/and/8/value", "empty_range"),
        ("/and/9/value", "type"),
        ("/and/10/value", "required"),
        ("/and/11/extra", "unexpected_key"),
        ("/and/12/or", "type"),
        ("/and/13", "mixed_condition"),
        ("/and/14", "invalid_condition"),
        ("/and/15/value", "empty_value"),
        ("/and/16/value", "empty_value"),
    ]


def test_messages_name_the_field_the_cause_and_the_fix() -> None:
    with pytest.raises(ConditionInvalid) as exc:
        parse(
            {
                "and": [
                    cond("amout", "eq", 1),
                    cond("stage", "gt", "won"),
                    cond("amount", "ge", "abc"),
                    cond("amount", "eq", None),
                ]
            }
        )

    messages = [i.message for i in exc.value.issues]
    assert messages[0].startswith(
        "`amout` is not a field of `opportunity` (did you mean `amount`?)"
    )
    assert messages[1] == (
        "field `stage` (single_select) does not support `gt`; "
        "use one of: eq, ne, in, not_in, is_empty"
    )
    assert messages[2] == "field `amount`: expected a number, got 'abc'"
    assert "use the `is_empty` operator" in messages[3]


def test_system_fields_can_be_tested() -> None:
    parsed = parse(
        {
            "and": [
                cond("id", "in", [1, "2"]),
                cond("owner_id", "eq", 7),
                cond("created_at", "ge", {"relative": "this_year"}),
            ]
        }
    )

    assert parsed.matches({"id": 2, "owner_id": 7, "created_at": datetime(2026, 2, 1, tzinfo=UTC)})
    assert not parsed.matches(
        {"id": 3, "owner_id": 7, "created_at": datetime(2026, 2, 1, tzinfo=UTC)}
    )


def test_nesting_and_size_are_bounded() -> None:
    deep: dict[str, Any] = cond("stage", "eq", "won")
    for _ in range(MAX_DEPTH):
        deep = {"not": deep}

    assert problems(deep) == [("/not/not/not/not/not/not/not/not/not/not", "too_deep")]
    assert problems(cond("quantity", "in", list(range(501)))) == [("/value", "too_many_values")]


def test_operator_aliases_gte_and_lte() -> None:
    parsed = parse({"and": [cond("amount", "gte", 10), cond("amount", "lte", 20)]})

    assert isinstance(parsed, AllOf)
    assert [c.op for c in parsed.conditions if isinstance(c, FieldTest)] == ["ge", "le"]


# -- relative dates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "n", "first", "last"),
    [
        ("today", None, date(2026, 3, 15), date(2026, 3, 15)),
        ("yesterday", None, date(2026, 3, 14), date(2026, 3, 14)),
        ("tomorrow", None, date(2026, 3, 16), date(2026, 3, 16)),
        ("this_week", None, date(2026, 3, 9), date(2026, 3, 15)),
        ("last_week", None, date(2026, 3, 2), date(2026, 3, 8)),
        ("next_week", None, date(2026, 3, 16), date(2026, 3, 22)),
        ("this_month", None, date(2026, 3, 1), date(2026, 3, 31)),
        ("last_month", None, date(2026, 2, 1), date(2026, 2, 28)),
        ("next_month", None, date(2026, 4, 1), date(2026, 4, 30)),
        ("this_quarter", None, date(2026, 1, 1), date(2026, 3, 31)),
        ("last_quarter", None, date(2025, 10, 1), date(2025, 12, 31)),
        ("next_quarter", None, date(2026, 4, 1), date(2026, 6, 30)),
        ("this_year", None, date(2026, 1, 1), date(2026, 12, 31)),
        ("last_year", None, date(2025, 1, 1), date(2025, 12, 31)),
        ("last_n_days", 7, date(2026, 3, 9), date(2026, 3, 15)),
        ("next_n_days", 3, date(2026, 3, 15), date(2026, 3, 17)),
    ],
)
def test_relative_dates_cover_whole_days(name: str, n: int | None, first: date, last: date) -> None:
    assert days_of(name, n, date(2026, 3, 15)) == (first, last)


def test_months_and_quarters_cross_year_boundaries() -> None:
    january = date(2026, 1, 10)

    assert days_of("last_month", None, january) == (date(2025, 12, 1), date(2025, 12, 31))
    assert days_of("next_month", None, date(2025, 12, 5)) == (date(2026, 1, 1), date(2026, 1, 31))
    assert days_of("last_quarter", None, january) == (date(2025, 10, 1), date(2025, 12, 31))


def test_today_is_the_day_in_the_timezone_given() -> None:
    # given: 17:00 UTC on 31 March is already 1 April in Shanghai
    late = datetime(2026, 3, 31, 17, 0, tzinfo=UTC)

    # when
    in_shanghai = resolve_period("today", None, now=late, tz=SHANGHAI, instants=True)
    in_utc = resolve_period("today", None, now=late, tz=UTC, instants=False)

    # then
    assert in_shanghai.start == datetime(2026, 3, 31, 16, 0, tzinfo=UTC)
    assert in_shanghai.stop == datetime(2026, 4, 1, 16, 0, tzinfo=UTC)
    assert (in_utc.start, in_utc.stop) == (date(2026, 3, 31), date(2026, 4, 1))
    assert timezone_named("Mars/Olympus") is None


def test_relative_dates_compare_with_their_period() -> None:
    def at(day: date) -> dict[str, Any]:
        return {"close_date": day}

    this_month = {"relative": "this_month"}
    in_month, before, after = at(date(2026, 3, 31)), at(date(2026, 2, 28)), at(date(2026, 4, 1))

    assert [parse(cond("close_date", op, this_month)).matches(in_month) for op in OPS] == [
        True,  # eq: within
        False,  # ne
        False,  # gt: after the period
        True,  # ge: from its start
        False,  # lt: before it
        True,  # le: up to its end
    ]
    assert [parse(cond("close_date", op, this_month)).matches(before) for op in OPS] == [
        False,
        True,
        False,
        False,
        True,
        True,
    ]
    assert [parse(cond("close_date", op, this_month)).matches(after) for op in OPS] == [
        False,
        True,
        True,
        True,
        False,
        False,
    ]
    assert parse(cond("close_date", "ne", this_month)).matches({"close_date": None})


OPS = ("eq", "ne", "gt", "ge", "lt", "le")


def test_relative_dates_on_datetime_fields_use_local_midnights() -> None:
    parsed = parse(cond("closed_at", "eq", {"relative": "today"}))

    # 15 March in Shanghai runs from 14 March 16:00 UTC to 15 March 16:00 UTC
    assert parsed.matches({"closed_at": datetime(2026, 3, 14, 16, 0, tzinfo=UTC)})
    assert parsed.matches({"closed_at": datetime(2026, 3, 15, 15, 59, tzinfo=UTC)})
    assert not parsed.matches({"closed_at": datetime(2026, 3, 15, 16, 0, tzinfo=UTC)})
    assert not parsed.matches({"closed_at": datetime(2026, 3, 14, 15, 59, tzinfo=UTC)})


def test_between_relative_dates_runs_from_the_first_start_to_the_second_end() -> None:
    parsed = parse(
        cond("close_date", "between", [{"relative": "last_month"}, {"relative": "this_month"}])
    )

    assert parsed.matches({"close_date": date(2026, 2, 1)})
    assert parsed.matches({"close_date": date(2026, 3, 31)})
    assert not parsed.matches({"close_date": date(2026, 4, 1)})
    assert not parsed.matches({"close_date": date(2026, 1, 31)})


def test_bad_relative_dates_are_explained() -> None:
    assert problems(
        {
            "and": [
                cond("amount", "eq", {"relative": "today"}),
                cond("close_date", "eq", {"relative": "someday"}),
                cond("close_date", "eq", {"relative": "last_n_days"}),
                cond("close_date", "eq", {"relative": "last_n_days", "n": 0}),
                cond("close_date", "eq", {"relative": "today", "n": 3}),
                cond("close_date", "in", [{"relative": "today"}]),
                cond("close_date", "eq", {"relative": "today", "when": 1}),
            ]
        }
    ) == [
        ("/and/0/value", "relative_not_allowed"),
        ("/and/1/value/relative", "unknown_relative_date"),
        ("/and/2/value/n", "required"),
        ("/and/3/value/n", "out_of_range"),
        ("/and/4/value/n", "unexpected_key"),
        ("/and/5/value/0", "relative_not_allowed"),
        ("/and/6/value/when", "unexpected_key"),
    ]


# -- matching in memory -------------------------------------------------------------------------


def matching(raw: Any, records: list[dict[str, Any]]) -> list[int]:
    parsed = parse(raw)
    return [r["id"] for r in records if parsed.matches(r)]


RECORDS = [
    {"id": 1, "name": "北京星辰科技有限公司", "amount": Decimal(150000), "stage": "won",
     "tags": ["a", "b"], "won": True},
    {"id": 2, "name": "Acme Ltd", "amount": Decimal(50000), "stage": "open", "tags": ["c"],
     "won": False},
    {"id": 3, "name": "", "amount": None, "stage": None, "tags": [], "won": None},
    {"id": 4, "name": None, "amount": Decimal(100000), "stage": "lost", "tags": None,
     "won": None},
]  # fmt: skip


def test_empty_fields_match_only_ne_not_in_and_is_empty() -> None:
    assert matching(cond("stage", "eq", "won"), RECORDS) == [1]
    assert matching(cond("stage", "ne", "won"), RECORDS) == [2, 3, 4]
    assert matching(cond("stage", "not_in", ["won", "lost"]), RECORDS) == [2, 3]
    assert matching(cond("amount", "lt", 100000), RECORDS) == [2]
    assert matching({"not": cond("amount", "lt", 100000)}, RECORDS) == [1, 3, 4]
    assert matching(cond("name", "is_empty", True), RECORDS) == [3, 4]
    assert matching(cond("name", "is_empty", False), RECORDS) == [1, 2]
    assert matching(cond("tags", "is_empty", True), RECORDS) == [3, 4]
    assert matching({"field": "won", "op": "is_empty"}, RECORDS) == [3, 4]


def test_text_and_choice_operators() -> None:
    assert matching(cond("name", "contains", "科技"), RECORDS) == [1]
    assert matching(cond("name", "contains", "ACME"), RECORDS) == [2]
    assert matching(cond("name", "starts_with", "acme l"), RECORDS) == [2]
    assert matching(cond("tags", "contains", ["b", "c"]), RECORDS) == [1, 2]
    assert matching(cond("tags", "contains", "a"), RECORDS) == [1]
    assert matching(cond("amount", "between", [50000, 100000]), RECORDS) == [2, 4]
    assert matching(cond("amount", "between", [100000, None]), RECORDS) == [1, 4]
    assert matching(cond("won", "eq", False), RECORDS) == [2]


def test_empty_groups() -> None:
    assert matching({"and": []}, RECORDS) == [1, 2, 3, 4]
    assert matching({"or": []}, RECORDS) == []


def test_records_in_json_form_are_read_through_the_field_types() -> None:
    parsed = parse(
        {
            "and": [
                cond("amount", "ge", 100000),
                cond("close_date", "eq", {"relative": "this_month"}),
                cond("closed_at", "lt", "2026-03-02T00:00:00Z"),
            ]
        }
    )

    assert parsed.matches(
        {"amount": 150000.5, "close_date": "2026-03-10", "closed_at": "2026-03-01T09:00:00+08:00"}
    )
    assert not parsed.matches(
        {"amount": "not a number", "close_date": "2026-03-10", "closed_at": "2026-03-01T09:00Z"}
    )


# -- query parameters -----------------------------------------------------------------------------


def test_query_parameters_become_conditions() -> None:
    parsed = params(
        ("stage", "won"),
        ("amount__ge", "100000"),
        ("amount__lte", "200000"),
        ("name__contains", "科技"),
        ("close_date__between", "2026-01-01,2026-03-31"),
        ("tags__contains", "a,b"),
        ("owner_id__in", "1,2"),
        ("won", "true"),
        ("notes__is_empty", "false"),
    )

    assert isinstance(parsed, AllOf)
    assert [(c.field, c.op, c.value) for c in parsed.conditions if isinstance(c, FieldTest)] == [
        ("stage", "eq", "won"),
        ("amount", "ge", Decimal(100000)),
        ("amount", "le", Decimal(200000)),
        ("name", "contains", "科技"),
        ("close_date", "range", Range(date(2026, 1, 1), date(2026, 3, 31))),
        ("tags", "has_any", ("a", "b")),
        ("owner_id", "in", (1, 2)),
        ("won", "eq", True),
        ("notes", "is_empty", False),
    ]
    assert params() is None


def test_query_parameters_take_relative_dates_and_open_ranges() -> None:
    last_week = params(("close_date", "last_n_days:7"))
    from_march = params(("close_date__between", "2026-03-01,"))

    assert last_week is not None and from_march is not None
    assert last_week.matches({"close_date": date(2026, 3, 9)})
    assert not last_week.matches({"close_date": date(2026, 3, 8)})
    assert from_march.matches({"close_date": date(2030, 1, 1)})
    assert not from_march.matches({"close_date": date(2026, 2, 28)})


def test_bad_query_parameters_are_reported_at_the_parameter() -> None:
    assert param_problems(
        ("amount__ge", "abc"),
        ("won", "maybe"),
        ("color", "red"),
        ("stage__gt", "won"),
        ("close_date__between", "2026-01-01"),
        ("owner_id__in", "1,x"),
        ("close_date", "last_n_days:x"),
    ) == [
        ("/query/amount__ge", "type"),
        ("/query/won", "type"),
        ("/query/color", "unknown_field"),
        ("/query/stage__gt", "operator_not_allowed"),
        ("/query/close_date__between", "type"),
        ("/query/owner_id__in", "type"),
        ("/query/close_date", "required"),
    ]


def test_sql_in_values_and_names_is_only_text() -> None:
    # a value is a value, whatever it looks like
    parsed = params(("name", "x' OR '1'='1"), ("name__contains", "%'; DROP TABLE opportunity; --"))
    assert isinstance(parsed, AllOf)
    assert [c.value for c in parsed.conditions if isinstance(c, FieldTest)] == [
        "x' OR '1'='1",
        "%'; DROP TABLE opportunity; --",
    ]
    # a field name is looked up, never spliced into SQL
    assert param_problems(('name" OR 1=1 --', "x")) == [('/query/name" OR 1=1 --', "unknown_field")]


def test_tags_are_lists_and_structured_values_only_test_emptiness() -> None:
    # given
    records = [
        {"id": 1, "labels": ["vip", "北京"], "address": {"country": "CN", "street": "1 号"}},
        {"id": 2, "labels": [], "address": None, "location": {"lat": 39.9, "lng": 116.4}},
    ]

    # then
    assert matching(cond("labels", "contains", ["北京", "x"]), records) == [1]
    assert matching(cond("labels", "is_empty", True), records) == [2]
    assert matching(cond("address", "is_empty", True), records) == [2]
    assert matching(cond("location", "is_empty", False), records) == [2]
    assert problems(cond("address", "contains", "1 号")) == [("/op", "filter_not_supported")]
    assert param_problems(("address", "x")) == [("/query/address", "filter_not_supported")]

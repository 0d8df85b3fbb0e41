"""Record rules without a database: computed field types, formulas, conditional required,
validation and duplicate rules, and rollups checked against the entities they summarise."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from formloom.engine.entities import EntityDoc, entity_kind
from formloom.engine.errors import DocumentInvalid
from formloom.engine.fields import field_types
from formloom.engine.fields.computed import (
    AutoNumberOptions,
    FormulaOptions,
    auto_number_period,
    format_auto_number,
)
from formloom.engine.meta import CheckContext
from formloom.engine.records.compiled import compile_entity
from formloom.engine.records.payload import check_payload
from formloom.engine.records.rollup_rules import dependent_rollup_issues, rollup_issues
from formloom.engine.records.rules import (
    EntityRules,
    compile_rules,
    compute_formulas,
    duplicate_key,
    fold,
    formula_value,
    required_when_issues,
    validation_issues,
)

LABEL = {"zh": "字段", "en": "Field"}
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def field(name: str, type_: str = "text", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "label": {"zh": name + "（中）", "en": name.title()},
        "type": type_,
        **extra,
    }


def formula(name: str, expression: str, result: str = "decimal", **options: Any) -> dict[str, Any]:
    return field(name, "formula", options={"expression": expression, "result": result, **options})


def entity(*fields: dict[str, Any], name: str = "deal", **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": LABEL, "fields": list(fields), **extra}


def rules_of(raw: dict[str, Any]) -> EntityRules:
    return compile_rules(EntityDoc.model_validate(raw))


def problems(raw: dict[str, Any], context: CheckContext | None = None) -> dict[str, str]:
    """path → message of every issue of ``raw`` (which must be invalid)."""
    with pytest.raises(DocumentInvalid) as caught:
        entity_kind.validate(raw, context)
    return {i.path: i.message for i in caught.value.issues}


def codes(raw: dict[str, Any], context: CheckContext | None = None) -> list[tuple[str, str]]:
    with pytest.raises(DocumentInvalid) as caught:
        entity_kind.validate(raw, context)
    return [(i.path, i.code) for i in caught.value.issues]


NUMBERS = (field("amount", "decimal"), field("discount", "decimal"), field("quantity", "integer"))


# -- field types ---------------------------------------------------------------------------------


def test_computed_types_are_registered_with_storage_by_result() -> None:
    formula_type = field_types.get("formula")
    rollup_type = field_types.get("rollup")

    assert formula_type.storage({"expression": "1", "result": "text"}).describe() == "string(1000)"
    stored = formula_type.storage({"expression": "1", "result": "decimal", "scale": 3})
    assert stored.describe() == "decimal(18,3)"
    assert formula_type.storage({"expression": "1", "result": "date"}).kind == "date"
    count = {"relation": {"entity": "deal", "field": "account"}, "aggregate": "count"}
    assert rollup_type.storage(count).kind == "integer"
    assert rollup_type.storage(
        {**count, "aggregate": "max", "field": "d", "result": "date"}
    ).kind == ("date")
    assert field_types.get("auto_number").storage({"pattern": "A{00}"}).describe() == "string(128)"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"pattern": "HT-{0000}-{00}"}, "has 2 counters"),
        ({"pattern": "HT-{YYYY}"}, "has 0 counters"),
        ({"pattern": "X{YYY}{000}"}, "unknown token {YYY}"),
        ({"pattern": "A}{00}"}, "unmatched"),
        ({"pattern": "A{000}", "reset": "monthly"}, "must contain {YYYY}"),
        ({"pattern": "A{YYYY}{000}", "reset": "daily"}, "must contain {MM}"),
        ({"pattern": "A{000}", "timezone": "Mars/Base"}, "unknown timezone"),
        ({"pattern": "A{0000000000000000000}"}, "wider than 18 digits"),
    ],
)
def test_auto_number_patterns_are_checked(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AutoNumberOptions.model_validate(options)

    assert expected in str(caught.value)


def test_auto_numbers_format_with_the_date_and_padding() -> None:
    yearly = AutoNumberOptions(pattern="HT-{YYYY}-{0000}", reset="yearly")
    daily = AutoNumberOptions(pattern="{YY}{MM}{DD}-{000}", reset="daily")

    assert format_auto_number(yearly, 42, date(2026, 3, 1)) == "HT-2026-0042"
    assert format_auto_number(yearly, 12345, date(2026, 3, 1)) == "HT-2026-12345"
    assert format_auto_number(daily, 7, date(2026, 3, 1)) == "260301-007"
    assert auto_number_period(yearly, date(2026, 3, 1)) == "2026"
    assert auto_number_period(daily, date(2026, 3, 1)) == "2026-03-01"
    assert auto_number_period(AutoNumberOptions(pattern="{0}"), date(2026, 3, 1)) == ""


def test_computed_fields_are_read_only_in_payloads() -> None:
    # given
    compiled = compile_entity(
        EntityDoc.model_validate(
            entity(
                *NUMBERS,
                formula("total", "amount * 2.0"),
                field("number", "auto_number", unique=True, options={"pattern": "D{000}"}),
            )
        )
    )

    # when
    checked = check_payload(compiled, {"amount": 1, "total": 5, "number": "D001"}, partial=False)
    zh = check_payload(compiled, {"total": 5}, partial=True, lang="zh")

    # then
    assert [(i.path, i.code) for i in checked.issues] == [
        ("/total", "read_only"),
        ("/number", "read_only"),
    ]
    assert "a formula computed by the platform" in checked.issues[0].message
    assert "an auto-number computed by the platform" in checked.issues[1].message
    assert zh.issues[0].message.startswith("`total` 是由系统计算的公式字段")


def test_computed_values_still_normalise_for_filters() -> None:
    formula_type = field_types.get("formula")
    options = FormulaOptions(expression="1", result="decimal", scale=2)

    assert formula_type.normalise("12.5", options) == Decimal("12.5")
    assert formula_type.to_json(Decimal("12.50"), options) == 12.5


# -- publishing formulas ------------------------------------------------------------------------


def test_a_formula_naming_a_missing_field_is_refused_with_a_suggestion() -> None:
    found = problems(entity(*NUMBERS, formula("total", "amout * (1 - discount / 100.0)")))

    assert found == {
        "/fields/3/options/expression": (
            "formula `total`: unknown field `amout` (did you mean `amount`?) (column 1)"
        )
    }


def test_formula_type_errors_point_at_the_expression_with_the_column() -> None:
    found = codes(
        entity(
            *NUMBERS,
            formula("label", "amount + 'x'", "text"),
            formula("whole", "amount * 2", "integer"),
            formula("flag", "quantity", "boolean"),
        )
    )

    assert found == [
        ("/fields/3/options/expression", "type_mismatch"),
        ("/fields/4/options/expression", "wrong_result_type"),
        ("/fields/5/options/expression", "wrong_result_type"),
    ]
    message = problems(entity(*NUMBERS, formula("whole", "amount * 2", "integer")))
    assert message["/fields/3/options/expression"] == (
        "formula `whole`: result must be int, got double (column 1)"
    )


def test_circular_formulas_are_refused_naming_the_circle() -> None:
    found = problems(
        entity(
            *NUMBERS,
            formula("a", "b + 1.0"),
            formula("b", "c * 2.0"),
            formula("c", "a - amount"),
            formula("fine", "amount + 1.0"),
        )
    )

    ((path, message),) = found.items()
    assert path.startswith("/fields/") and path.endswith("/options/expression")
    assert "in a circle" in message
    circle = message.split(": ", 1)[1].split(";")[0]
    assert circle in ("`a` → `b` → `c` → `a`", "`b` → `c` → `a` → `b`", "`c` → `a` → `b` → `c`")


def test_a_formula_using_itself_is_a_circle() -> None:
    found = problems(entity(*NUMBERS, formula("total", "total + amount")))

    assert "`total` → `total`" in found["/fields/3/options/expression"]


def test_formulas_may_not_use_the_clock_the_id_or_auto_numbers() -> None:
    found = codes(
        entity(
            *NUMBERS,
            field("code", "auto_number", unique=True, options={"pattern": "C{000}"}),
            formula("age", "today() > timestamp('2026-01-01T00:00:00Z')", "boolean"),
            formula("code_key", "code + string(id)", "text"),
        )
    )

    assert found == [
        ("/fields/4/options/expression", "uses_clock"),
        ("/fields/5/options/expression", "not_available"),
        ("/fields/5/options/expression", "not_available"),
    ]


def test_computed_fields_refuse_required_default_and_auto_numbers_must_be_unique() -> None:
    found = codes(
        entity(
            *NUMBERS,
            {**formula("total", "amount"), "required": True, "default": 1},
            field("code", "auto_number", options={"pattern": "C{000}"}),
        )
    )

    assert found == [
        ("/fields/3/required", "computed_field"),
        ("/fields/3/default", "computed_field"),
        ("/fields/4/unique", "auto_number_not_unique"),
    ]


# -- formulas at run time -----------------------------------------------------------------------


def test_formulas_compute_in_dependency_order_and_round_half_up() -> None:
    rules = rules_of(
        entity(
            *NUMBERS,
            formula("gross", "net * 1.13", scale=2),
            formula("net", "has(discount) ? amount * (1 - discount / 100.0) : amount", scale=2),
            formula("big", "gross > 100.0", "boolean"),
            formula("title", "'Deal of ' + string(quantity)", "text"),
        )
    )

    values = compute_formulas(
        rules, {"amount": Decimal("100.05"), "discount": Decimal("10"), "quantity": 3}, now=NOW
    )

    order = [f.name for f in rules.formulas]
    assert order.index("net") < order.index("gross") < order.index("big")
    assert values == {
        "net": Decimal("90.05"),  # 90.045 rounds half up
        "gross": Decimal("101.76"),  # 90.05 * 1.13 = 101.7565
        "big": True,
        "title": "Deal of 3",
    }


def test_a_formula_that_cannot_be_evaluated_stores_nothing() -> None:
    rules = rules_of(entity(*NUMBERS, formula("ratio", "amount / discount"), formula("x", "ratio")))

    values = compute_formulas(rules, {"amount": Decimal(1), "discount": None}, now=NOW)

    assert values == {"ratio": None, "x": None}


@pytest.mark.parametrize(
    ("result", "raw", "stored"),
    [
        ("text", "x" * 1001, None),
        ("integer", 2**63, None),
        ("integer", True, None),
        ("decimal", 1e30, None),
        ("decimal", 2, Decimal("2.00")),
        ("date", datetime(2026, 3, 1, 23, 0, tzinfo=UTC), date(2026, 3, 1)),
        (
            "datetime",
            datetime(2026, 3, 1, 23, 0, tzinfo=UTC),
            datetime(2026, 3, 1, 23, 0, tzinfo=UTC),
        ),
        ("boolean", 1, None),
    ],
)
def test_formula_results_that_do_not_fit_are_empty(result: str, raw: Any, stored: Any) -> None:
    options = FormulaOptions(expression="x", result=result)  # type: ignore[arg-type]

    assert formula_value(options, raw) == stored


# -- conditional required and validation rules -------------------------------------------------


STAGES = field(
    "stage",
    "single_select",
    options={"choices": [{"value": "open", "label": LABEL}, {"value": "won", "label": LABEL}]},
)


def test_required_when_requires_a_value_when_its_condition_matches() -> None:
    raw = entity(
        *NUMBERS,
        STAGES,
        field("reason", required_when={"field": "stage", "op": "eq", "value": "won"}),
    )
    compiled = compile_entity(EntityDoc.model_validate(raw))
    rules = compile_rules(compiled.document)

    won = required_when_issues(rules, compiled, {"stage": "won"}, now=NOW, lang="zh")
    given = required_when_issues(rules, compiled, {"stage": "won", "reason": "x"}, now=NOW)
    other = required_when_issues(rules, compiled, {"stage": "open"}, now=NOW)
    flagged = required_when_issues(rules, compiled, {"stage": "won"}, now=NOW, flagged=["/reason"])

    assert [(i.path, i.code, i.message) for i in won] == [
        ("/reason", "required", "reason（中）为必填项（符合该字段的必填条件）")
    ]
    assert given == other == flagged == []


def test_required_when_with_a_relative_date_is_resolved_at_each_save() -> None:
    raw = entity(
        field("close_date", "date"),
        field(
            "reason",
            required_when={"field": "close_date", "op": "lt", "value": {"relative": "today"}},
        ),
    )
    compiled = compile_entity(EntityDoc.model_validate(raw))
    rules = compile_rules(compiled.document)
    values = {"close_date": date(2026, 3, 10)}

    assert rules.conditional[0].parsed is None
    assert required_when_issues(rules, compiled, values, now=NOW)
    assert not required_when_issues(rules, compiled, values, now=datetime(2026, 3, 1, tzinfo=UTC))


def test_bad_required_when_conditions_are_refused_at_publish() -> None:
    found = codes(
        entity(
            *NUMBERS,
            field("a", required_when={"field": "amout", "op": "gt", "value": 1}),
            field("b", required=True, required_when={"field": "amount", "op": "gt", "value": 1}),
            field("c", required_when={"field": "amount", "op": "contains", "value": "x"}),
        )
    )

    assert found == [
        ("/fields/3/required_when/field", "unknown_field"),
        ("/fields/4/required_when", "redundant_condition"),
        ("/fields/5/required_when/op", "operator_not_allowed"),
    ]


RULES = [
    {
        "name": "no_negative",
        "when": "has(amount) && amount < 0",
        "message": {"zh": "金额不能为负数", "en": "The amount must not be negative"},
        "field": "amount",
    },
    {
        "name": "discount_needs_amount",
        "when": "has(discount) && !has(amount)",
        "message": {"zh": "有折扣时必须填写金额", "en": "A discount needs an amount"},
    },
    {
        "name": "broken_for_empty",
        "when": "amount / quantity > 10.0",
        "message": {"zh": "单价过高", "en": "Unit price too high"},
        "field": "quantity",
    },
]


def test_validation_rules_block_with_their_message_in_the_callers_language() -> None:
    rules = rules_of(entity(*NUMBERS, validation_rules=RULES))

    en = validation_issues(rules, {"amount": Decimal(-1), "quantity": 1}, now=NOW)
    zh = validation_issues(rules, {"discount": Decimal(5)}, now=NOW, lang="zh", at="/create/2")
    fine = validation_issues(rules, {"amount": Decimal(5), "quantity": 1}, now=NOW)

    assert [(i.path, i.code, i.message) for i in en] == [
        ("/amount", "validation_rule", "The amount must not be negative")
    ]
    # `broken_for_empty` cannot be evaluated without a quantity: it does not block
    assert [(i.path, i.message) for i in zh] == [("/create/2", "有折扣时必须填写金额")]
    assert fine == []


def test_validation_rules_may_use_system_fields_and_formulas() -> None:
    rules = rules_of(
        entity(
            field("close_date", "date"),
            formula("double_amount", "2.0", "decimal"),
            validation_rules=[
                {
                    "name": "close_after_creation",
                    "when": "has(close_date) && close_date < created_at && double_amount > 1.0",
                    "message": {
                        "zh": "结束日期须晚于创建日期",
                        "en": "Close date must be after creation",
                    },
                    "field": "close_date",
                }
            ],
        )
    )

    values = {"close_date": date(2026, 1, 1), "created_at": NOW, "double_amount": Decimal(2)}

    assert [i.path for i in validation_issues(rules, values, now=NOW)] == ["/close_date"]


def test_bad_validation_rules_are_refused_with_pointers() -> None:
    rule = {"name": "r", "message": {"zh": "错", "en": "Wrong"}}
    found = problems(
        entity(
            *NUMBERS,
            validation_rules=[
                {**rule, "when": "amount > 'x'"},
                {**rule, "when": "amount + 1.0", "field": "amout"},
                {**rule, "when": "amonut > 1.0"},
            ],
        )
    )

    assert found == {
        "/validation_rules/0/when": (
            "validation rule `r`: cannot compare double with string (column 8)"
        ),
        "/validation_rules/1/name": "rule `r` is defined twice",
        "/validation_rules/1/field": "`amout` is not a field of `deal` (did you mean `amount`?)",
        "/validation_rules/1/when": (
            "validation rule `r`: result must be bool, got double (column 1)"
        ),
        "/validation_rules/2/name": "rule `r` is defined twice",
        "/validation_rules/2/when": (
            "validation rule `r`: unknown field `amonut` (did you mean `amount`?) (column 1)"
        ),
    }


# -- duplicate rules -----------------------------------------------------------------------------


def test_duplicate_rules_name_comparable_fields() -> None:
    found = codes(
        entity(
            field("name"),
            field("notes", "long_text"),
            duplicate_rules=[
                {"name": "d", "fields": ["name", "nmae", "name"]},
                {"name": "d", "fields": ["notes"], "match": "normalised"},
            ],
        )
    )

    assert found == [
        ("/duplicate_rules/0/fields/1", "unknown_field"),
        ("/duplicate_rules/0/fields/2", "repeated_field"),
        ("/duplicate_rules/1/name", "duplicate_rule"),
        ("/duplicate_rules/1/fields/0", "not_comparable"),
    ]


def test_duplicate_keys_fold_text_when_normalised() -> None:
    assert fold("  Acme \t  LTD ") == "acme ltd"
    assert fold("Straße") == fold("STRASSE")
    assert duplicate_key(" Acme  Ltd ", normalised=True) == "acme ltd"
    assert duplicate_key("Acme", normalised=False) == "Acme"
    assert duplicate_key("", normalised=True) is None
    assert duplicate_key(Decimal("1.5"), normalised=True) == Decimal("1.5")


# -- rollups --------------------------------------------------------------------------------------

DEAL = entity(
    field("title"),
    field("amount", "decimal"),
    field("close_date", "date"),
    STAGES,
    field("account", "lookup", options={"entity": "account"}),
    field("owner", "lookup", options={"entity": "person"}),
    field(
        "lines",
        "rollup",
        options={"relation": {"entity": "line", "field": "deal"}, "aggregate": "count"},
    ),
    formula("lines_x2", "double(lines) * 2.0"),
)


def rollup(**options: Any) -> dict[str, Any]:
    return field(
        "summary", "rollup", options={"relation": {"entity": "deal", "field": "account"}, **options}
    )


def account(*fields: dict[str, Any]) -> dict[str, Any]:
    return entity(field("name"), *fields, name="account")


def rollup_problems(raw: dict[str, Any]) -> list[tuple[str, str]]:
    others = {"deal": EntityDoc.model_validate(DEAL)}
    return [(i.path, i.code) for i in rollup_issues(EntityDoc.model_validate(raw), others)]


def test_valid_rollups_pass() -> None:
    raw = account(
        rollup(aggregate="count"),
        {**rollup(aggregate="sum", field="amount"), "name": "won_amount"},
        {**rollup(aggregate="max", field="close_date", result="date"), "name": "last_close"},
        {
            **rollup(
                aggregate="avg",
                field="amount",
                condition={"field": "stage", "op": "eq", "value": "won"},
            ),
            "name": "won_avg",
        },
    )

    assert rollup_problems(raw) == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"relation": {"entity": "deals", "field": "account"}, "aggregate": "count"},
            [("/fields/1/options/relation/entity", "unknown_entity")],
        ),
        (
            {"relation": {"entity": "deal", "field": "acount"}, "aggregate": "count"},
            [("/fields/1/options/relation/field", "not_a_relation")],
        ),
        (
            {"relation": {"entity": "deal", "field": "owner"}, "aggregate": "count"},
            [("/fields/1/options/relation/field", "not_a_relation")],
        ),
        (
            {"relation": {"entity": "account", "field": "x"}, "aggregate": "count"},
            [("/fields/1/options/relation/entity", "same_entity")],
        ),
        (
            {
                "relation": {"entity": "deal", "field": "account"},
                "aggregate": "sum",
                "field": "title",
            },
            [("/fields/1/options/field", "cannot_aggregate")],
        ),
        (
            {
                "relation": {"entity": "deal", "field": "account"},
                "aggregate": "sum",
                "field": "amont",
            },
            [("/fields/1/options/field", "unknown_field")],
        ),
        (
            {
                "relation": {"entity": "deal", "field": "account"},
                "aggregate": "max",
                "field": "close_date",
            },
            [("/fields/1/options/field", "cannot_aggregate")],
        ),
        (
            {
                "relation": {"entity": "deal", "field": "account"},
                "aggregate": "sum",
                "field": "lines",
            },
            [("/fields/1/options/field", "cannot_aggregate")],
        ),
        (
            {
                "relation": {"entity": "deal", "field": "account"},
                "aggregate": "sum",
                "field": "lines_x2",
            },
            [("/fields/1/options/field", "cannot_aggregate")],
        ),
        (
            {
                "relation": {"entity": "deal", "field": "account"},
                "aggregate": "count",
                "condition": {"field": "stag", "op": "eq", "value": "won"},
            },
            [("/fields/1/options/condition/field", "unknown_field")],
        ),
        (
            {
                "relation": {"entity": "deal", "field": "account"},
                "aggregate": "count",
                "condition": {
                    "field": "close_date",
                    "op": "eq",
                    "value": {"relative": "this_month"},
                },
            },
            [("/fields/1/options/condition", "relative_not_allowed")],
        ),
    ],
)
def test_bad_rollups_are_refused(options: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    raw = account(field("summary", "rollup", options=options))

    assert rollup_problems(raw) == expected


def test_rollup_messages_explain_the_fix() -> None:
    others = {"deal": EntityDoc.model_validate(DEAL)}
    raw = account(rollup(aggregate="max", field="close_date"))
    unknown = account(
        field(
            "s",
            "rollup",
            options={"relation": {"entity": "deals", "field": "account"}, "aggregate": "count"},
        )
    )

    (issue,) = rollup_issues(EntityDoc.model_validate(raw), others)
    (missing,) = rollup_issues(EntityDoc.model_validate(unknown), others)

    assert issue.message == (
        'rollup `summary`: `deal.close_date` (date) holds dates: set `"result": "date"`'
    )
    assert missing.message == (
        "rollup `s`: entity `deals` does not exist (did you mean `deal`?); publish it first"
    )


def test_a_child_entity_cannot_drop_what_a_rollup_uses() -> None:
    parent = EntityDoc.model_validate(account(rollup(aggregate="sum", field="amount")))
    without_amount = EntityDoc.model_validate(
        {**DEAL, "fields": [f for f in DEAL["fields"] if f["name"] != "amount"]}
    )

    issues = dependent_rollup_issues(without_amount, {"account": parent})
    fine = dependent_rollup_issues(EntityDoc.model_validate(DEAL), {"account": parent})

    assert [(i.path, i.code) for i in issues] == [("", "rollup_broken")]
    assert issues[0].message.startswith("rollup `account.summary` summarises `deal` records: ")
    assert fine == []


def test_the_entity_kind_checks_rollups_against_the_batch() -> None:
    context = CheckContext(pending={"entity": {"deal": DEAL}})

    found = codes(account(rollup(aggregate="sum", field="amont")), context)

    assert found == [("/fields/1/options/field", "unknown_field")]

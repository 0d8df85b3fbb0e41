"""Record payloads (engine/records/payload.py) and the core field types' value checks (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from formloom.engine.entities import EntityDoc
from formloom.engine.fields import FieldValueError, field_types
from formloom.engine.records.compiled import CompiledEntity, compile_entity
from formloom.engine.records.payload import check_payload

LABEL = {"en": "Name", "zh": "名称"}


def choices(*values: str) -> dict[str, Any]:
    return {"choices": [{"value": v, "label": {"en": v}} for v in values]}


def normalise(type_name: str, value: Any, **options: Any) -> Any:
    field_type = field_types.get(type_name)
    return field_type.normalise(value, field_type.parse_options(options))


def refused(type_name: str, value: Any, **options: Any) -> FieldValueError:
    with pytest.raises(FieldValueError) as caught:
        normalise(type_name, value, **options)
    return caught.value


@pytest.fixture(scope="module")
def deal() -> CompiledEntity:
    return compile_entity(
        EntityDoc.model_validate(
            {
                "name": "deal",
                "label": {"en": "Deal", "zh": "商机"},
                "fields": [
                    {
                        "name": "title",
                        "label": {"en": "Title", "zh": "标题"},
                        "type": "text",
                        "required": True,
                        "options": {"max_length": 10},
                    },
                    {
                        "name": "stage",
                        "label": {"en": "Stage", "zh": "阶段"},
                        "type": "single_select",
                        "options": choices("open", "won"),
                        "default": "open",
                    },
                    {
                        "name": "amount",
                        "label": {"en": "Amount", "zh": "金额"},
                        "type": "decimal",
                        "options": {"precision": 12, "scale": 2},
                    },
                    {"name": "notes", "label": LABEL, "type": "long_text"},
                    {
                        "name": "account",
                        "label": LABEL,
                        "type": "lookup",
                        "options": {"entity": "a"},
                    },
                ],
            }
        )
    )


def codes(entity: CompiledEntity, payload: Any, **kwargs: Any) -> list[tuple[str, str]]:
    checked = check_payload(entity, payload, **{"partial": False, **kwargs})
    return [(i.path, i.code) for i in checked.issues]


# -- field types ---------------------------------------------------------------------------


def test_text_is_trimmed_and_limited() -> None:
    assert normalise("text", "  Acme  ") == "Acme"
    error = refused("text", "x" * 11, max_length=10)
    assert error.code == "too_long"
    assert error.message("en") == "is 11 characters long; at most 10 allowed"
    assert error.message("zh") == "长度为 11 个字符，最多允许 10 个"
    assert refused("text", 42).code == "type"
    assert refused("text", "ab", pattern=r"[A-Z]+").code == "pattern"


def test_long_text_keeps_whitespace() -> None:
    assert normalise("long_text", "  two\nlines ") == "  two\nlines "
    assert refused("long_text", "abc", max_length=2).code == "too_long"


@pytest.mark.parametrize(("value", "expected"), [(7, 7), ("12", 12), (" -3 ", -3), (4.0, 4)])
def test_integers(value: Any, expected: int) -> None:
    assert normalise("integer", value) == expected


@pytest.mark.parametrize("value", [1.5, True, "1e3", "many", [1]])
def test_not_integers(value: Any) -> None:
    error = refused("integer", value)
    assert error.code == "type"
    assert error.message("zh").startswith("应为整数")


def test_integer_bounds() -> None:
    assert refused("integer", 2**63).code == "out_of_range"
    assert refused("integer", -1, min=0).code == "too_small"
    assert refused("integer", 11, max=10).message("en") == "11 is more than the maximum 10"


def test_decimals_respect_scale_and_precision() -> None:
    assert normalise("decimal", 1234.5, precision=12, scale=2) == Decimal("1234.5")
    assert normalise("decimal", "1.50", precision=12, scale=1) == Decimal("1.50")
    assert normalise("decimal", "0.00", precision=4, scale=2) == 0
    too_precise = refused("decimal", 1.234, precision=12, scale=2)
    assert too_precise.code == "too_precise"
    assert too_precise.message("zh") == "1.234 有 3 位小数，最多允许 2 位"
    assert refused("decimal", "12345678901", precision=12, scale=2).code == "out_of_range"


@pytest.mark.parametrize("value", ["1E+20", 1e300, "123456789012345678901234567890"])
def test_decimals_in_exponent_form_are_range_checked(value: Any) -> None:
    # found by these tests: digits before the point were counted without the exponent
    assert refused("decimal", value, precision=18, scale=4).code == "out_of_range"


@pytest.mark.parametrize("value", ["abc", "NaN", "Infinity", True, None, [1]])
def test_not_decimals(value: Any) -> None:
    assert refused("decimal", value).code == "type"


def test_currency_and_percent_digits() -> None:
    assert normalise("currency", "99.99") == Decimal("99.99")
    assert refused("currency", "0.001").code == "too_precise"
    assert normalise("currency", "0.001", scale=3) == Decimal("0.001")
    assert normalise("percent", 12.5) == Decimal("12.5")
    assert refused("percent", 123456).code == "out_of_range"


def test_booleans_are_strict() -> None:
    assert normalise("boolean", False) is False
    for value in ("true", 1, None):
        assert refused("boolean", value).code == "type"


def test_dates() -> None:
    assert normalise("date", "2026-03-31") == date(2026, 3, 31)
    error = refused("date", "31/03/2026")
    assert (error.code, error.message("en")) == (
        "type",
        "expected a date such as 2026-03-31, got '31/03/2026'",
    )


def test_datetimes_need_a_timezone_and_are_stored_in_utc() -> None:
    moment = normalise("datetime", "2026-03-31T09:30:00+08:00")
    assert moment == datetime(2026, 3, 31, 1, 30, tzinfo=UTC)
    assert normalise("datetime", "2026-03-31T01:30:00Z") == moment
    error = refused("datetime", "2026-03-31T09:30:00")
    assert error.code == "no_timezone"
    assert error.message("zh") == "“2026-03-31T09:30:00”缺少时区，请加上例如 +08:00 或 Z"
    assert refused("datetime", 1711848600).code == "type"


def test_single_select() -> None:
    assert normalise("single_select", "won", **choices("open", "won")) == "won"
    error = refused("single_select", "maybe", **choices("open", "won"))
    assert error.code == "unknown_choice"
    assert error.message("en") == "'maybe' is not one of the choices: open, won"
    assert refused("single_select", 1, **choices("open")).code == "unknown_choice"


def test_multi_select_keeps_choice_order_without_repeats() -> None:
    options = choices("hot", "cold", "vip")
    assert normalise("multi_select", ["vip", "hot", "vip"], **options) == ["hot", "vip"]
    assert refused("multi_select", "hot", **options).code == "type"
    assert refused("multi_select", ["hot", "warm"], **options).code == "unknown_choice"


def test_email() -> None:
    assert normalise("email", " Li.Lei@Example.COM ") == "Li.Lei@example.com"
    for value in ("nobody", "a@b", "a b@c.com"):
        assert refused("email", value).code == "invalid_email"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("010-12345678", "+861012345678"),
        ("(0755) 1234 5678", "+8675512345678"),
        ("+1 415 555 0100", "+14155550100"),
    ],
)
def test_phone_numbers_are_normalised_to_e164(value: str, expected: str) -> None:
    assert normalise("phone", value) == expected


@pytest.mark.parametrize("value", ["12345", "1380013800", "23800138000", "+0123", "call me"])
def test_bad_phone_numbers(value: str) -> None:
    error = refused("phone", value)
    assert error.code == "invalid_phone"
    assert "13800138000" in error.message("en")
    assert error.message("zh").startswith(f"“{value}”不是有效的电话号码")


def test_a_phone_outside_china_needs_a_country_code() -> None:
    assert refused("phone", "4155550100", region="US").code == "invalid_phone"
    assert normalise("phone", "+4930123456", region="US") == "+4930123456"


def test_urls() -> None:
    assert normalise("url", "https://example.com/a?b=c") == "https://example.com/a?b=c"
    for value in ("example.com", "ftp://example.com", "http://", "javascript:alert(1)"):
        assert refused("url", value).code == "invalid_url"


def test_urls_with_spaces_are_refused() -> None:
    # found by these tests: urlsplit accepts spaces in the host
    error = refused("url", "http://exa mple.com")
    assert error.code == "invalid_url"
    assert "spaces" in error.message("en")


def test_lookup_ids() -> None:
    assert normalise("lookup", "7", entity="account") == 7
    assert refused("lookup", 0, entity="account").code == "invalid_id"
    assert refused("lookup", "seven", entity="account").code == "type"


def test_lookup_on_delete_option() -> None:
    lookup = field_types.get("lookup")
    assert lookup.parse_options({"entity": "a"}).on_delete == "restrict"  # type: ignore[attr-defined]
    assert lookup.check_options({"entity": "a", "on_delete": "cascade"}, at="") == []
    bad = lookup.check_options({"entity": "a", "on_delete": "delete"}, at="/fields/0")
    assert [i.path for i in bad] == ["/fields/0/options/on_delete"]


def test_stored_values_back_to_json() -> None:
    decimal = field_types.get("decimal")
    options = decimal.parse_options({})
    assert decimal.to_json(Decimal("5.00"), options) == 5
    assert decimal.to_json(Decimal("5.25"), options) == 5.25
    assert field_types.get("date").to_json(date(2026, 1, 2), None) == "2026-01-02"


# -- payloads ------------------------------------------------------------------------------


def test_a_good_payload(deal: CompiledEntity) -> None:
    checked = check_payload(
        deal, {"title": " A ", "amount": "3.5", "version": 2, "owner_id": 4}, partial=False
    )

    assert checked.issues == []
    assert checked.values == {"title": "A", "amount": Decimal("3.5"), "stage": "open"}
    assert (checked.version, checked.owner_id) == (2, 4)


def test_every_problem_is_reported_together(deal: CompiledEntity) -> None:
    assert codes(
        deal,
        {
            "title": "x" * 11,
            "stage": "maybe",
            "amount": 1.001,
            "account": "abc",
            "id": 1,
            "created_at": "2026-01-01T00:00:00Z",
            "deleted_at": None,
            "titel": "typo",
            "version": 0,
        },
    ) == [
        ("/title", "too_long"),
        ("/stage", "unknown_choice"),
        ("/amount", "too_precise"),
        ("/account", "type"),
        ("/id", "read_only"),
        ("/created_at", "read_only"),
        ("/deleted_at", "read_only"),
        ("/titel", "unknown_field"),
        ("/version", "type"),
    ]


def test_unknown_fields_get_a_suggestion(deal: CompiledEntity) -> None:
    checked = check_payload(deal, {"titel": "x", "colour": 1, "title": "t"}, partial=True)

    messages = [i.message for i in checked.issues]
    assert messages[0] == "`deal` has no field `titel`; did you mean `title`?"
    assert messages[1] == (
        "`deal` has no field `colour`; its fields are: title, stage, amount, notes, account"
    )


def test_required_fields(deal: CompiledEntity) -> None:
    assert codes(deal, {}) == [("/title", "required")]
    assert codes(deal, {"title": "   "}) == [("/title", "required")]
    # a partial payload checks only what it sends, but may not empty a required field
    assert codes(deal, {"amount": 1}, partial=True) == []
    assert codes(deal, {"title": None}, partial=True) == [("/title", "required")]
    # a bad value is reported once, not also as missing
    assert codes(deal, {"title": 5}) == [("/title", "type")]


def test_defaults_fill_a_create_but_not_a_replace(deal: CompiledEntity) -> None:
    created = check_payload(deal, {"title": "t"}, partial=False)
    replaced = check_payload(deal, {"title": "t"}, partial=False, fill_defaults=False)
    explicit = check_payload(deal, {"title": "t", "stage": None}, partial=False)

    assert created.values["stage"] == "open"
    assert "stage" not in replaced.values
    assert explicit.values["stage"] is None


def test_empty_values(deal: CompiledEntity) -> None:
    checked = check_payload(deal, {"amount": " ", "notes": "", "stage": None}, partial=True)

    assert checked.values == {"amount": None, "notes": "", "stage": None}


def test_owner_may_be_cleared(deal: CompiledEntity) -> None:
    checked = check_payload(deal, {"owner_id": None}, partial=True)

    assert checked.issues == []
    assert checked.owner_id is None


def test_messages_in_chinese(deal: CompiledEntity) -> None:
    checked = check_payload(
        deal,
        {"stage": "maybe", "amount": "abc", "id": 3, "colour": 1},
        partial=False,
        lang="zh",
    )

    assert [i.message for i in checked.issues] == [
        "阶段：'maybe' 不是可选值之一：open, won",
        "金额：应为数字，实际为 'abc'",
        "`id` 由系统维护，不能写入",
        "`deal` 没有字段 `colour`；可用字段：title, stage, amount, notes, account",
        "标题为必填项",
    ]


def test_not_an_object(deal: CompiledEntity) -> None:
    assert codes(deal, [1]) == [("", "type")]
    zh = check_payload(deal, "x", partial=False, lang="zh", at="/create/0")
    assert [(i.path, i.message) for i in zh.issues] == [("/create/0", "应为 JSON 对象")]


def test_paths_are_prefixed(deal: CompiledEntity) -> None:
    assert codes(deal, {"stage": "x"}, at="/update/3") == [
        ("/update/3/stage", "unknown_choice"),
        ("/update/3/title", "required"),
    ]

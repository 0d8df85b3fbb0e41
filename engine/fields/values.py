"""Value parsing shared by field types, each failure with an English and a Chinese message."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from formloom.engine.fields.base import FieldValueError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INTEGER_TEXT = re.compile(r"^[+-]?\d+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_CN_LANDLINE = re.compile(r"^0\d{2,3}\d{7,8}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def wrong_type(value: Any, expected_en: str, expected_zh: str) -> FieldValueError:
    return FieldValueError(
        "type",
        f"expected {expected_en}, got {_shown(value)}",
        f"应为{expected_zh}，实际为 {_shown(value)}",
    )


def text(value: Any, *, max_length: int, strip: bool = True) -> str:
    if not isinstance(value, str):
        raise wrong_type(value, "text", "文本")
    result = value.strip() if strip else value
    if len(result) > max_length:
        raise FieldValueError(
            "too_long",
            f"is {len(result)} characters long; at most {max_length} allowed",
            f"长度为 {len(result)} 个字符，最多允许 {max_length} 个",
        )
    return result


def integer(value: Any) -> int:
    if isinstance(value, bool):
        raise wrong_type(value, "a whole number", "整数")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _INTEGER_TEXT.match(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int):
        raise wrong_type(value, "a whole number", "整数")
    if not INT64_MIN <= value <= INT64_MAX:
        raise FieldValueError("out_of_range", "the number is too large", "数值太大")
    return value


def decimal(value: Any, *, precision: int | None, scale: int | None) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise wrong_type(value, "a number", "数字")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise wrong_type(value, "a number", "数字") from None
    if not number.is_finite():
        raise wrong_type(value, "a finite number", "有限数字")
    if number == 0:
        return Decimal(0)
    # Trailing zeros are not precision: "1.50" fits a scale of 1.
    places = max(0, -int(number.normalize().as_tuple().exponent))
    if scale is not None and places > scale:
        raise FieldValueError(
            "too_precise",
            f"{number} has {places} decimal places; at most {scale} allowed",
            f"{number} 有 {places} 位小数，最多允许 {scale} 位",
        )
    digits = number.adjusted() + 1  # digits before the decimal point (<= 0 below 1)
    room = (precision or 38) - (scale or 0)
    if digits > room:
        raise FieldValueError(
            "out_of_range",
            f"{number} is too large: at most {room} digits before the decimal point",
            f"{number} 太大：整数部分最多 {room} 位",
        )
    return number


def decimal_to_json(value: Any) -> Any:
    """Stored decimals become JSON numbers (whole numbers without a fraction)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def check_range(number: int | Decimal, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and number < Decimal(str(minimum)):
        raise FieldValueError(
            "too_small",
            f"{number} is less than the minimum {minimum}",
            f"{number} 小于最小值 {minimum}",
        )
    if maximum is not None and number > Decimal(str(maximum)):
        raise FieldValueError(
            "too_large",
            f"{number} is more than the maximum {maximum}",
            f"{number} 大于最大值 {maximum}",
        )


def bounded(schema: dict[str, Any], minimum: float | None, maximum: float | None) -> dict[str, Any]:
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def iso_date(value: Any) -> date:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise wrong_type(value, "a date such as 2026-03-31", "日期，例如 2026-03-31")


def iso_datetime(value: Any) -> datetime:
    moment = None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            moment = None
    if moment is None:
        raise wrong_type(
            value,
            "a date and time such as 2026-03-31T09:30:00+08:00",
            "日期时间，例如 2026-03-31T09:30:00+08:00",
        )
    if moment.tzinfo is None:
        raise FieldValueError(
            "no_timezone",
            f"{value!r} has no timezone; add one, e.g. +08:00 or Z",
            f"“{value}”缺少时区，请加上例如 +08:00 或 Z",
        )
    return moment.astimezone(UTC)


def choice(value: Any, allowed: list[str]) -> str:
    if isinstance(value, str) and value in allowed:
        return value
    return _unknown_choice(value, allowed)


def _unknown_choice(value: Any, allowed: list[str]) -> str:
    listed = ", ".join(allowed)
    raise FieldValueError(
        "unknown_choice",
        f"{_shown(value)} is not one of the choices: {listed}",
        f"{_shown(value)} 不是可选值之一：{listed}",
    )


def email(value: Any) -> str:
    address = text(value, max_length=254)
    if not _EMAIL.match(address):
        raise FieldValueError(
            "invalid_email",
            f"{address!r} is not an email address",
            f"“{address}”不是有效的电子邮件地址",
        )
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def phone(value: Any, *, region: str) -> str:
    """Normalise to E.164: Chinese mobiles and landlines, or international numbers with +."""
    raw = text(value, max_length=40)
    digits = re.sub(r"[\s\-().]", "", raw)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if digits.startswith("+86"):
        national = digits[3:]
        if _CN_MOBILE.match(national) or _CN_LANDLINE.match("0" + national):
            return "+86" + national
    elif digits.startswith("+"):
        if _E164.match(digits):
            return digits
    elif region == "CN":
        if _CN_MOBILE.match(digits):
            return "+86" + digits
        if _CN_LANDLINE.match(digits):
            return "+86" + digits[1:]
    raise FieldValueError(
        "invalid_phone",
        f"{raw!r} is not a phone number: use a mobile number such as 13800138000, a landline "
        "such as 010-12345678, or an international number such as +14155550100",
        f"“{raw}”不是有效的电话号码：请使用手机号（如 13800138000）、座机（如 010-12345678）"
        "或国际号码（如 +14155550100）",
    )


def url(value: Any) -> str:
    address = text(value, max_length=2048)
    parts = urlsplit(address)
    blank = any(c.isspace() for c in address)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or blank:
        raise FieldValueError(
            "invalid_url",
            f"{address!r} is not a web address; start it with http:// or https:// "
            "and leave out spaces",
            f"“{address}”不是有效的网址，请以 http:// 或 https:// 开头且不含空格",
        )
    return address

"""Checks shared by field types whose values are JSON objects or finite numbers.

Each failure is a :class:`FieldValueError` with an English and a Chinese message,
like the helpers of :mod:`formloom.engine.fields.values`.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from formloom.engine.fields.base import FieldValueError
from formloom.engine.fields.values import wrong_type


def shown(value: Any) -> str:
    """A value as it appears in a message, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def json_object(value: Any, *, keys: Collection[str], what_en: str, what_zh: str) -> dict[str, Any]:
    """``value`` as a JSON object whose keys are all among ``keys``."""
    if not isinstance(value, dict):
        raise wrong_type(value, what_en, what_zh)
    unknown = [k for k in value if k not in keys]
    if unknown:
        allowed = ", ".join(keys)
        raise FieldValueError(
            "unknown_key",
            f"unexpected key `{unknown[0]}`; the allowed keys are: {allowed}",
            f"不支持的键 `{unknown[0]}`；允许的键：{allowed}",
        )
    return value


def finite_number(value: Any, *, key: str) -> float:
    """A JSON number (not a boolean, not NaN or infinity) found under ``key``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FieldValueError(
            "type",
            f"`{key}` must be a number, got {shown(value)}",
            f"`{key}` 应为数字，实际为 {shown(value)}",
        )
    return float(value)


def required_key(value: dict[str, Any], key: str) -> Any:
    """``value[key]``, refusing a missing or null entry."""
    found = value.get(key)
    if found is None:
        raise FieldValueError(
            "incomplete",
            f"`{key}` is missing",
            f"缺少 `{key}`",
        )
    return found

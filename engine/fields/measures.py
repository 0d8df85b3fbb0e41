"""Field types that measure something on a fixed scale: duration, rating, progress."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from formloom.engine.fields import values
from formloom.engine.fields.base import ORDERED_OPERATORS, FieldType, FieldValueError, register
from formloom.engine.fields.objects import shown
from formloom.engine.fields.storage import Storage


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DurationOptions(_Options):
    min: int | None = Field(default=None, ge=0, description="Shortest allowed duration, seconds")
    max: int | None = Field(default=None, ge=0, description="Longest allowed duration, seconds")

    @model_validator(mode="after")
    def _min_below_max(self) -> DurationOptions:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is more than max {self.max}")
        return self


class RatingOptions(_Options):
    max: int = Field(default=5, ge=1, le=10, description="Number of stars")


#: Duration units, largest first: length in seconds and every accepted spelling.
_UNIT_SPELLINGS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (604_800, ("w", "wk", "wks", "week", "weeks", "周", "星期")),
    (86_400, ("d", "day", "days", "天", "日")),
    (3_600, ("h", "hr", "hrs", "hour", "hours", "小时", "个小时", "时")),
    (60, ("m", "min", "mins", "minute", "minutes", "分钟", "分")),
    (1, ("s", "sec", "secs", "second", "seconds", "秒", "秒钟")),
)
#: Each spelling with the unit's rank (0 = weeks) and its length in seconds.
_UNITS = {
    spelling: (rank, seconds)
    for rank, (seconds, spellings) in enumerate(_UNIT_SPELLINGS)
    for spelling in spellings
}
_PART = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z\u4e00-\u9fff]+)")
_CLOCK = re.compile(r"^([0-9]+):([0-5][0-9])(?::([0-5][0-9]))?$")
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_ISO = re.compile(
    rf"^P(?:(?P<w>{_NUMBER})W)?(?:(?P<d>{_NUMBER})D)?"
    rf"(?:T(?:(?P<h>{_NUMBER})H)?(?:(?P<m>{_NUMBER})M)?(?:(?P<s>{_NUMBER})S)?)?$"
)
_DIGITS = re.compile(r"[0-9]+")
_ISO_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_EXAMPLES_EN = '5400, "1h30m", "90m", "2d 3h", "01:30:00", "1天2小时30分" or "PT1H30M"'
_EXAMPLES_ZH = "5400、“1h30m”、“90m”、“2d 3h”、“01:30:00”、“1天2小时30分”或“PT1H30M”"


def parse_duration(value: Any) -> int:
    """A duration in whole seconds; raises :class:`FieldValueError` with the accepted forms.

    Grammar (spaces allowed between parts, letters case-insensitive):

    - a whole number of seconds: ``5400`` (JSON number or digits in a string);
    - clock time ``H:MM`` or ``H:MM:SS`` (hours, minutes, seconds): ``01:30:00``,
      ``1:30`` (= 1 h 30 min), hours may exceed 24;
    - number-and-unit parts, largest unit first, each unit at most once:
      ``1h30m``, ``90m``, ``2d 3h``, ``1.5h``, ``1天2小时30分``, ``1 小时 30 分钟``.
      Units: weeks ``w wk week(s) 周 星期``, days ``d day(s) 天 日``, hours
      ``h hr(s) hour(s) 小时 时``, minutes ``m min(s) minute(s) 分钟 分``, seconds
      ``s sec(s) second(s) 秒 秒钟``. Decimal numbers are allowed when the total is a
      whole number of seconds (``1.5h`` yes, ``0.5s`` no);
    - ISO 8601 without years or months (they have no fixed length): ``PT1H30M``,
      ``P2DT3H``, ``P1W``.

    Negative durations are refused.
    """
    if isinstance(value, bool):
        raise _not_a_duration(value)
    if isinstance(value, int | float):
        if isinstance(value, float) and not value.is_integer():
            raise _fraction(value)
        return _non_negative(int(value))
    if not isinstance(value, str):
        raise _not_a_duration(value)
    text = value.strip()
    lowered = text.lower()
    if lowered.startswith("-"):
        raise _negative(text)
    if _DIGITS.fullmatch(lowered):
        return values.integer(lowered)
    clock = _CLOCK.match(lowered)
    if clock:
        hours, minutes, seconds = clock.group(1), clock.group(2), clock.group(3) or "0"
        return int(hours) * 3_600 + int(minutes) * 60 + int(seconds)
    if lowered.startswith("p"):
        return _iso_duration(text)
    return _unit_duration(text, lowered)


def _unit_duration(text: str, lowered: str) -> int:
    total = Decimal(0)
    position, last_rank = 0, -1
    while position < len(lowered):
        part = _PART.match(lowered, position)
        if part is None:
            if lowered[position:].strip() == "":
                break
            raise _not_a_duration(text)
        number, unit = part.group(1), part.group(2)
        if unit not in _UNITS:
            raise FieldValueError(
                "invalid_duration",
                f"{text!r}: unknown unit `{unit}`; use w, d, h, m, s (or 周, 天, 小时, 分钟, 秒)",
                f"“{text}”：未知的时间单位 `{unit}`；"
                "请使用 w、d、h、m、s（或 周、天、小时、分钟、秒）",
            )
        rank, seconds = _UNITS[unit]
        if rank <= last_rank:
            raise FieldValueError(
                "invalid_duration",
                f"{text!r}: give each unit once, largest first (e.g. 1h30m, not 30m1h)",
                f"“{text}”：每个单位只能出现一次，且从大到小排列（如 1h30m，而不是 30m1h）",
            )
        last_rank = rank
        total += Decimal(number) * seconds
        position = part.end()
    if last_rank < 0:
        raise _not_a_duration(text)
    return _whole_seconds(total, text)


def _iso_duration(text: str) -> int:
    match = _ISO.match(text.upper())
    if match is None or text.upper() in ("P", "PT") or text.upper().endswith("T"):
        raise FieldValueError(
            "invalid_duration",
            f"{text!r} is not an ISO 8601 duration such as PT1H30M or P2DT3H "
            "(years and months are not accepted: their length varies)",
            f"“{text}”不是 ISO 8601 时长（如 PT1H30M、P2DT3H；不支持年和月，因其长度不固定）",
        )
    total = sum(
        (
            Decimal(amount) * _ISO_SECONDS[unit]
            for unit, amount in match.groupdict().items()
            if amount
        ),
        Decimal(0),
    )
    return _whole_seconds(total, text)


def _whole_seconds(total: Decimal, text: str) -> int:
    if total != total.to_integral_value():
        raise _fraction(text)
    return values.integer(int(total))


def _non_negative(seconds: int) -> int:
    if seconds < 0:
        raise _negative(seconds)
    return values.integer(seconds)


def _negative(value: Any) -> FieldValueError:
    return FieldValueError(
        "negative",
        f"a duration cannot be negative, got {shown(value)}",
        f"时长不能为负数，实际为 {shown(value)}",
    )


def _fraction(value: Any) -> FieldValueError:
    return FieldValueError(
        "too_precise",
        f"{shown(value)} is not a whole number of seconds",
        f"{shown(value)} 不是整数秒",
    )


def _not_a_duration(value: Any) -> FieldValueError:
    return FieldValueError(
        "invalid_duration",
        f"{shown(value)} is not a duration; use seconds or a form such as {_EXAMPLES_EN}",
        f"{shown(value)} 不是有效的时长；请使用秒数或如下格式：{_EXAMPLES_ZH}",
    )


def format_duration(seconds: int) -> str:
    """A short display form: ``1d 2h 30m 5s`` (``0s`` for zero)."""
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts) or "0s"


@register
class DurationType(FieldType):
    """A length of time, stored as whole seconds; see :func:`parse_duration` for the input forms.

    Stored and returned as an integer number of seconds. In CEL the value is a
    ``duration`` (the formula layer turns the stored seconds into one).
    """

    name = "duration"
    options_model = DurationOptions
    operators = ORDERED_OPERATORS
    cel_type = "duration"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("integer")

    def value_schema(self, options: DurationOptions) -> dict[str, Any]:
        seconds = values.bounded({"type": "integer"}, options.min or 0, options.max)
        return {
            "anyOf": [seconds, {"type": "string", "minLength": 1, "maxLength": 64}],
            "description": f"Seconds, or text such as {_EXAMPLES_EN}; returned as seconds",
        }

    def normalise(self, value: Any, options: DurationOptions) -> int:
        seconds = parse_duration(value)
        if options.min is not None and seconds < options.min:
            raise FieldValueError(
                "too_small",
                f"{format_duration(seconds)} is shorter than the minimum "
                f"{format_duration(options.min)}",
                f"{format_duration(seconds)} 短于最短时长 {format_duration(options.min)}",
            )
        if options.max is not None and seconds > options.max:
            raise FieldValueError(
                "too_large",
                f"{format_duration(seconds)} is longer than the maximum "
                f"{format_duration(options.max)}",
                f"{format_duration(seconds)} 超过最长时长 {format_duration(options.max)}",
            )
        return seconds


@register
class RatingType(FieldType):
    """Stars: a whole number from 0 (not rated) to the ``max`` option (1-10, default 5)."""

    name = "rating"
    options_model = RatingOptions
    operators = ORDERED_OPERATORS
    cel_type = "int"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("integer")

    def value_schema(self, options: RatingOptions) -> dict[str, Any]:
        return {"type": "integer", "minimum": 0, "maximum": options.max}

    def normalise(self, value: Any, options: RatingOptions) -> int:
        stars = values.integer(value)
        if not 0 <= stars <= options.max:
            raise FieldValueError(
                "out_of_range",
                f"a rating is a whole number from 0 to {options.max}, got {stars}",
                f"评分应为 0 到 {options.max} 之间的整数，实际为 {stars}",
            )
        return stars


@register
class ProgressType(FieldType):
    """Percent complete: a whole number from 0 to 100 (``"45%"`` is accepted too)."""

    name = "progress"
    operators = ORDERED_OPERATORS
    cel_type = "int"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("integer")

    def value_schema(self, options: Any) -> dict[str, Any]:
        return {"type": "integer", "minimum": 0, "maximum": 100}

    def normalise(self, value: Any, options: Any) -> int:
        if isinstance(value, str) and value.strip().endswith("%"):
            value = value.strip()[:-1].strip()
        percent = values.integer(value)
        if not 0 <= percent <= 100:
            raise FieldValueError(
                "out_of_range",
                f"progress is a whole percentage from 0 to 100, got {percent}",
                f"进度应为 0 到 100 之间的整数百分比，实际为 {percent}",
            )
        return percent

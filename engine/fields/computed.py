"""Computed field types: ``formula``, ``auto_number`` and ``rollup``.

The platform computes their values; clients never write them (a payload that
sends one gets a ``read_only`` issue). Each type stores its values in a real
column, so lists filter and sort on them like on any other field:

- ``formula``: a CEL expression over the record's fields (DESIGN.md §4),
  evaluated on every create and update and stored by its ``result`` type.
- ``auto_number``: a number such as ``HT-2026-0042`` assigned once, on create,
  from a counter that never skips or repeats (``pattern``, ``reset``).
- ``rollup``: count, sum, min, max or average over the records of another
  entity that look this record up (``relation``), optionally only those that
  match a structured ``condition``.

The checks that need the whole entity (a formula's references, cycles, a
rollup's child entity) live in :mod:`formloom.engine.records.rules`; these
classes only know their own options.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from datetime import date
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from formloom.engine.expressions import MAX_LENGTH
from formloom.engine.fields import values
from formloom.engine.fields.base import (
    BASIC_OPERATORS,
    ORDERED_OPERATORS,
    TEXT_OPERATORS,
    FieldType,
    register,
)
from formloom.engine.fields.storage import Storage
from formloom.engine.names import API_NAME_PATTERN
from formloom.engine.relative_dates import DEFAULT_TIMEZONE, timezone_named

FormulaResult = Literal["text", "integer", "decimal", "boolean", "date", "datetime"]
#: The CEL type a formula must produce for each result type.
FORMULA_CEL_TYPES: dict[str, str] = {
    "text": "string",
    "integer": "int",
    "decimal": "double",
    "boolean": "bool",
    "date": "timestamp",
    "datetime": "timestamp",
}
#: The filter operators of a formula, by result type: those of the field type that
#: stores the same values (text like text, booleans like booleans, the rest ordered).
FORMULA_OPERATORS: dict[str, tuple[str, ...]] = {
    "text": TEXT_OPERATORS,
    "integer": ORDERED_OPERATORS,
    "decimal": ORDERED_OPERATORS,
    "boolean": BASIC_OPERATORS,
    "date": ORDERED_OPERATORS,
    "datetime": ORDERED_OPERATORS,
}
#: Longest text a text formula stores.
FORMULA_TEXT_LENGTH = 1000
#: Length of an auto-number column: the longest pattern plus a 19-digit counter fits.
AUTO_NUMBER_LENGTH = 128
MAX_COUNTER_WIDTH = 18
_TOKEN = re.compile(r"\{([^{}]*)\}")
_DATE_TOKENS = ("YYYY", "YY", "MM", "DD")
Reset = Literal["never", "yearly", "monthly", "daily"]
Aggregate = Literal["count", "sum", "min", "max", "avg"]
RollupResult = Literal["number", "date", "datetime"]
#: Precision of a rollup's stored numbers (sums of many amounts need room).
ROLLUP_PRECISION = 24


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComputedFieldType(FieldType):
    """A field whose values the platform computes: read-only in payloads.

    ``normalise`` still reads values of the field's result type: filters on the
    field use it. Record payloads refuse the field before that (see
    :func:`read_only_message`). ``cel_type_of`` gives the CEL type of the values
    for given options (a formula's type depends on its ``result``); the
    ``cel_type`` class attribute is only a fallback for code without the options.
    """

    #: What the field is, in English and Chinese, for messages.
    what_en: ClassVar[str]
    what_zh: ClassVar[str]

    @abstractmethod
    def cel_type_of(self, options: Any) -> str:
        """The CEL type of this field's values (``options`` is the parsed options model)."""

    def read_only_message(self, name: str, lang: str) -> str:
        """Why a payload may not send field ``name``, in ``lang``."""
        if lang == "zh":
            return f"`{name}` 是由系统计算的{self.what_zh}，不能写入；请不要提交该字段"
        return (
            f"`{name}` is {self.what_en} computed by the platform and cannot be written; "
            "leave it out of the payload"
        )


# -- formula ------------------------------------------------------------------------------------


class FormulaOptions(_Options):
    expression: str = Field(
        min_length=1,
        max_length=MAX_LENGTH,
        description="CEL expression over the entity's fields, e.g. `amount * (1 - discount / 100)`",
    )
    result: FormulaResult = Field(description="Type of the value the expression produces")
    precision: int = Field(default=18, ge=1, le=38, description="Digits of a decimal result")
    scale: int = Field(default=2, ge=0, le=10, description="Decimal places of a decimal result")

    @model_validator(mode="after")
    def _scale_fits(self) -> FormulaOptions:
        if self.scale > self.precision:
            raise ValueError(f"scale {self.scale} exceeds precision {self.precision}")
        return self


@register
class FormulaType(ComputedFieldType):
    """A value computed from the record's other fields on every save, and stored.

    Results: ``text`` (up to 1000 characters), ``integer``, ``decimal``
    (``precision``/``scale``, rounded half up), ``boolean``, ``date`` (the UTC
    calendar day of the CEL timestamp) and ``datetime``. When the expression
    fails for a record (an empty field in arithmetic, division by zero) the
    stored value is empty.
    """

    name = "formula"
    options_model = FormulaOptions
    operators = ORDERED_OPERATORS
    cel_type = "dyn"
    what_en = "a formula"
    what_zh = "公式字段"

    def storage(self, options: dict[str, Any]) -> Storage:
        parsed = FormulaOptions.model_validate(options)
        kinds: dict[str, Storage] = {
            "text": Storage("string", length=FORMULA_TEXT_LENGTH),
            "integer": Storage("integer"),
            "decimal": Storage("decimal", precision=parsed.precision, scale=parsed.scale),
            "boolean": Storage("boolean"),
            "date": Storage("date"),
            "datetime": Storage("datetime"),
        }
        return kinds[parsed.result]

    def cel_type_of(self, options: FormulaOptions) -> str:
        return FORMULA_CEL_TYPES[options.result]

    def operators_for(self, options: FormulaOptions) -> tuple[str, ...]:
        return FORMULA_OPERATORS[options.result]

    def value_schema(self, options: FormulaOptions) -> dict[str, Any]:
        schemas: dict[str, dict[str, Any]] = {
            "text": {"type": "string", "maxLength": FORMULA_TEXT_LENGTH},
            "integer": {"type": "integer"},
            "decimal": {"type": "number"},
            "boolean": {"type": "boolean"},
            "date": {"type": "string", "format": "date"},
            "datetime": {"type": "string", "format": "date-time"},
        }
        return {**schemas[options.result], "readOnly": True}

    def normalise(self, value: Any, options: FormulaOptions) -> Any:
        kind = options.result
        if kind == "text":
            return values.text(value, max_length=FORMULA_TEXT_LENGTH)
        if kind == "integer":
            return values.integer(value)
        if kind == "decimal":
            return values.decimal(value, precision=options.precision, scale=options.scale)
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            raise values.wrong_type(value, "true or false", "true 或 false")
        return values.iso_date(value) if kind == "date" else values.iso_datetime(value)

    def to_json(self, value: Any, options: FormulaOptions) -> Any:
        return _stored_to_json(value)


# -- auto_number --------------------------------------------------------------------------------


class AutoNumberOptions(_Options):
    pattern: str = Field(
        min_length=1,
        max_length=60,
        description=(
            "e.g. `HT-{YYYY}-{0000}`: {YYYY} {YY} {MM} {DD} are the date of the create, "
            "{0000} the counter padded with zeros to that many digits"
        ),
    )
    reset: Reset = Field(
        default="never", description="Start the counter again at 1 every year, month or day"
    )
    timezone: str = Field(
        default=DEFAULT_TIMEZONE, description="IANA timezone of the date in the pattern"
    )

    @field_validator("pattern")
    @classmethod
    def _one_counter(cls, pattern: str) -> str:
        counters = 0
        for token in _TOKEN.findall(pattern):
            if token and set(token) == {"0"}:
                counters += 1
                if len(token) > MAX_COUNTER_WIDTH:
                    raise ValueError(f"the counter {{{token}}} is wider than 18 digits")
            elif token not in _DATE_TOKENS:
                raise ValueError(
                    f"unknown token {{{token}}} in the pattern; use {{YYYY}}, {{YY}}, {{MM}}, "
                    "{DD} and one counter such as {0000}"
                )
        if counters != 1:
            raise ValueError(
                f"the pattern has {counters} counters; it needs exactly one, e.g. {{0000}}"
            )
        if "{" in _TOKEN.sub("", pattern) or "}" in _TOKEN.sub("", pattern):
            raise ValueError("the pattern has an unmatched `{` or `}`")
        return pattern

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        if timezone_named(zone) is None:
            raise ValueError(f"unknown timezone `{zone}`; use an IANA name such as Asia/Shanghai")
        return zone

    @model_validator(mode="after")
    def _reset_has_date(self) -> AutoNumberOptions:
        needed = {"yearly": ("year",), "monthly": ("year", "MM"), "daily": ("year", "MM", "DD")}
        tokens = set(_TOKEN.findall(self.pattern))
        for part in needed.get(self.reset, ()):
            present = bool(tokens & {"YYYY", "YY"}) if part == "year" else part in tokens
            if not present:
                shown = "{YYYY}" if part == "year" else "{" + part + "}"
                raise ValueError(
                    f"reset `{self.reset}` numbers from 1 again each period, so the pattern must "
                    f"contain {shown}; otherwise numbers of different periods would repeat"
                )
        return self


def auto_number_period(options: AutoNumberOptions, day: date) -> str:
    """The counter's period for a record created on ``day``: '' (never reset), '2026', '2026-03'…"""
    if options.reset == "yearly":
        return f"{day.year:04d}"
    if options.reset == "monthly":
        return f"{day.year:04d}-{day.month:02d}"
    if options.reset == "daily":
        return day.isoformat()
    return ""


def format_auto_number(options: AutoNumberOptions, counter: int, day: date) -> str:
    """The number ``counter`` of a record created on ``day``, e.g. ``HT-2026-0042``."""

    def token(match: re.Match[str]) -> str:
        name = match.group(1)
        parts = {
            "YYYY": f"{day.year:04d}",
            "YY": f"{day.year % 100:02d}",
            "MM": f"{day.month:02d}",
            "DD": f"{day.day:02d}",
        }
        return parts.get(name) or str(counter).zfill(len(name))

    return _TOKEN.sub(token, options.pattern)


@register
class AutoNumberType(ComputedFieldType):
    """A number assigned on create from a counter, without duplicates or gaps.

    Must be ``unique`` (the database index is the last guard against repeats).
    Records that existed before the field was added stay empty.
    """

    name = "auto_number"
    options_model = AutoNumberOptions
    operators = TEXT_OPERATORS
    cel_type = "string"
    what_en = "an auto-number"
    what_zh = "自动编号"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("string", length=AUTO_NUMBER_LENGTH)

    def cel_type_of(self, options: AutoNumberOptions) -> str:
        return "string"

    def value_schema(self, options: AutoNumberOptions) -> dict[str, Any]:
        return {"type": "string", "readOnly": True, "examples": [options.pattern]}

    def normalise(self, value: Any, options: AutoNumberOptions) -> str:
        return values.text(value, max_length=AUTO_NUMBER_LENGTH)


# -- rollup -------------------------------------------------------------------------------------


class RollupRelation(_Options):
    entity: str = Field(pattern=API_NAME_PATTERN, description="The entity whose records roll up")
    field: str = Field(
        pattern=API_NAME_PATTERN,
        description="Its lookup field that points at this entity",
    )


class RollupOptions(_Options):
    relation: RollupRelation
    aggregate: Aggregate
    field: str | None = Field(
        default=None,
        pattern=API_NAME_PATTERN,
        description="Field of the related records to aggregate (count: optional, counts values)",
    )
    condition: dict[str, Any] | None = Field(
        default=None, description="Structured condition on the related records to include"
    )
    result: RollupResult = Field(
        default="number", description="`date`/`datetime` for min or max of a date field"
    )
    scale: int = Field(default=2, ge=0, le=10, description="Decimal places of a number result")

    @model_validator(mode="after")
    def _consistent(self) -> RollupOptions:
        if self.aggregate != "count" and self.field is None:
            raise ValueError(f"`{self.aggregate}` needs the `field` to aggregate")
        if self.aggregate in ("count", "sum", "avg") and self.result != "number":
            raise ValueError(f"`{self.aggregate}` gives a number: leave out `result`")
        return self


@register
class RollupType(ComputedFieldType):
    """A summary of the records of another entity that look this record up.

    Kept up to date in the transaction of every change to those records. With
    no matching records, ``count`` and ``sum`` are 0 and the others empty.
    """

    name = "rollup"
    options_model = RollupOptions
    operators = ORDERED_OPERATORS
    cel_type = "double"
    what_en = "a rollup"
    what_zh = "汇总字段"

    def storage(self, options: dict[str, Any]) -> Storage:
        parsed = RollupOptions.model_validate(options)
        if parsed.aggregate == "count":
            return Storage("integer")
        if parsed.result == "number":
            return Storage("decimal", precision=ROLLUP_PRECISION, scale=parsed.scale)
        return Storage(parsed.result)

    def cel_type_of(self, options: RollupOptions) -> str:
        if options.aggregate == "count":
            return "int"
        return "double" if options.result == "number" else "timestamp"

    def value_schema(self, options: RollupOptions) -> dict[str, Any]:
        if options.aggregate == "count":
            return {"type": "integer", "readOnly": True}
        if options.result == "number":
            return {"type": "number", "readOnly": True}
        fmt = "date" if options.result == "date" else "date-time"
        return {"type": "string", "format": fmt, "readOnly": True}

    def normalise(self, value: Any, options: RollupOptions) -> Any:
        if options.aggregate == "count":
            return values.integer(value)
        if options.result == "number":
            return values.decimal(value, precision=ROLLUP_PRECISION, scale=options.scale)
        return values.iso_date(value) if options.result == "date" else values.iso_datetime(value)

    def to_json(self, value: Any, options: RollupOptions) -> Any:
        return _stored_to_json(value)


def _stored_to_json(value: Any) -> Any:
    """Decimals as JSON numbers, dates and datetimes as ISO 8601, the rest as stored."""
    if isinstance(value, date):
        return value.isoformat()
    return values.decimal_to_json(value)

"""The built-in field types of the platform core."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from formloom.engine.fields import values
from formloom.engine.fields.base import (
    ORDERED_OPERATORS,
    TEXT_OPERATORS,
    FieldType,
    FieldValueError,
    register,
)
from formloom.engine.fields.storage import Storage
from formloom.engine.names import API_NAME_PATTERN


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextOptions(_Options):
    max_length: int = Field(default=255, ge=1, le=4000)
    pattern: str | None = Field(default=None, max_length=500)


class LongTextOptions(_Options):
    max_length: int = Field(default=100_000, ge=1, le=1_000_000)


class DecimalOptions(_Options):
    precision: int = Field(default=18, ge=1, le=38)
    scale: int = Field(default=4, ge=0, le=18)
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _scale_fits(self) -> DecimalOptions:
        if self.scale > self.precision:
            raise ValueError(f"scale {self.scale} exceeds precision {self.precision}")
        return self


class IntegerOptions(_Options):
    min: int | None = None
    max: int | None = None


class CurrencyOptions(_Options):
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    scale: int = Field(default=2, ge=0, le=6)
    min: float | None = None
    max: float | None = None


class PercentOptions(_Options):
    min: float | None = None
    max: float | None = None


class SelectOption(_Options):
    value: str = Field(pattern=API_NAME_PATTERN)
    label: dict[str, str] = Field(min_length=1)
    color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")


class SelectOptions(_Options):
    choices: list[SelectOption] = Field(min_length=1, max_length=1000)

    def values(self) -> list[str]:
        return [c.value for c in self.choices]

    @field_validator("choices")
    @classmethod
    def _unique_values(cls, choices: list[SelectOption]) -> list[SelectOption]:
        seen: set[str] = set()
        for choice in choices:
            if choice.value in seen:
                raise ValueError(f"choice value `{choice.value}` appears twice")
            seen.add(choice.value)
        return choices


class PhoneOptions(_Options):
    region: str = Field(default="CN", pattern=r"^[A-Z]{2}$")


#: What deleting a looked-up record does to the records that look it up.
OnDelete = Literal["restrict", "set_null", "cascade"]


class LookupOptions(_Options):
    entity: str = Field(pattern=API_NAME_PATTERN)
    on_delete: OnDelete = Field(
        default="restrict",
        description=(
            "When the looked-up record is deleted: `restrict` refuses while records look it "
            "up, `set_null` clears this field, `cascade` deletes these records too"
        ),
    )


@register
class TextType(FieldType):
    name = "text"
    options_model = TextOptions
    operators = TEXT_OPERATORS

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("string", length=TextOptions.model_validate(options).max_length)

    def value_schema(self, options: TextOptions) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "maxLength": options.max_length}
        if options.pattern:
            schema["pattern"] = options.pattern
        return schema

    def normalise(self, value: Any, options: TextOptions) -> str:
        text = values.text(value, max_length=options.max_length)
        if options.pattern and not re.fullmatch(options.pattern, text):
            raise FieldValueError(
                "pattern",
                f"{text!r} does not match the required format {options.pattern}",
                f"“{text}”不符合要求的格式 {options.pattern}",
            )
        return text


@register
class LongTextType(FieldType):
    name = "long_text"
    options_model = LongTextOptions
    operators = TEXT_OPERATORS

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("text")

    def value_schema(self, options: LongTextOptions) -> dict[str, Any]:
        return {"type": "string", "maxLength": options.max_length}

    def normalise(self, value: Any, options: LongTextOptions) -> str:
        return values.text(value, max_length=options.max_length, strip=False)


@register
class IntegerType(FieldType):
    name = "integer"
    options_model = IntegerOptions
    operators = ORDERED_OPERATORS
    cel_type = "int"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("integer")

    def value_schema(self, options: IntegerOptions) -> dict[str, Any]:
        return values.bounded({"type": "integer"}, options.min, options.max)

    def normalise(self, value: Any, options: IntegerOptions) -> int:
        number = values.integer(value)
        values.check_range(number, options.min, options.max)
        return number


class _DecimalLike(FieldType):
    """Exact decimal numbers, checked against the column's precision and scale."""

    operators = ORDERED_OPERATORS
    cel_type = "double"

    def value_schema(self, options: Any) -> dict[str, Any]:
        return values.bounded({"type": "number"}, options.min, options.max)

    def digits(self, options: Any) -> tuple[int, int]:
        """Precision and scale of stored values."""
        return 18, options.scale

    def normalise(self, value: Any, options: Any) -> Decimal:
        precision, scale = self.digits(options)
        number = values.decimal(value, precision=precision, scale=scale)
        values.check_range(number, options.min, options.max)
        return number

    def to_json(self, value: Any, options: Any) -> Any:
        return values.decimal_to_json(value)


@register
class DecimalType(_DecimalLike):
    name = "decimal"
    options_model = DecimalOptions

    def storage(self, options: dict[str, Any]) -> Storage:
        parsed = DecimalOptions.model_validate(options)
        return Storage("decimal", precision=parsed.precision, scale=parsed.scale)

    def digits(self, options: DecimalOptions) -> tuple[int, int]:
        return options.precision, options.scale


@register
class CurrencyType(_DecimalLike):
    name = "currency"
    options_model = CurrencyOptions

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("decimal", precision=18, scale=CurrencyOptions.model_validate(options).scale)


@register
class PercentType(_DecimalLike):
    """A percentage as a number: 12.5 means 12.5 %."""

    name = "percent"
    options_model = PercentOptions

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("decimal", precision=9, scale=4)

    def digits(self, options: PercentOptions) -> tuple[int, int]:
        return 9, 4


@register
class BooleanType(FieldType):
    name = "boolean"
    cel_type = "bool"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("boolean")

    def value_schema(self, options: Any) -> dict[str, Any]:
        return {"type": "boolean"}

    def normalise(self, value: Any, options: Any) -> bool:
        if isinstance(value, bool):
            return value
        raise values.wrong_type(value, "true or false", "true 或 false")


@register
class DateType(FieldType):
    name = "date"
    operators = ORDERED_OPERATORS
    cel_type = "timestamp"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("date")

    def value_schema(self, options: Any) -> dict[str, Any]:
        return {"type": "string", "format": "date"}

    def normalise(self, value: Any, options: Any) -> date:
        return values.iso_date(value)

    def to_json(self, value: Any, options: Any) -> Any:
        return value.isoformat() if isinstance(value, date) else value


@register
class DateTimeType(FieldType):
    """A moment in time: given with a timezone offset, stored in UTC."""

    name = "datetime"
    operators = ORDERED_OPERATORS
    cel_type = "timestamp"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("datetime")

    def value_schema(self, options: Any) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}

    def normalise(self, value: Any, options: Any) -> datetime:
        return values.iso_datetime(value)

    def to_json(self, value: Any, options: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value


@register
class SingleSelectType(FieldType):
    name = "single_select"
    options_model = SelectOptions

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("string", length=63)

    def value_schema(self, options: SelectOptions) -> dict[str, Any]:
        return {"type": "string", "enum": options.values()}

    def normalise(self, value: Any, options: SelectOptions) -> str:
        return values.choice(value, options.values())


@register
class MultiSelectType(FieldType):
    name = "multi_select"
    options_model = SelectOptions
    operators = ("contains", "is_empty")
    cel_type = "list(string)"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("json")

    def value_schema(self, options: SelectOptions) -> dict[str, Any]:
        return {
            "type": "array",
            "items": {"type": "string", "enum": options.values()},
            "uniqueItems": True,
        }

    def normalise(self, value: Any, options: SelectOptions) -> list[str]:
        if not isinstance(value, list):
            raise values.wrong_type(value, "a list of choices", "选项列表")
        allowed = options.values()
        chosen = [values.choice(v, allowed) for v in value]
        return [v for v in allowed if v in chosen]


@register
class EmailType(FieldType):
    name = "email"
    operators = TEXT_OPERATORS

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("string", length=254)

    def value_schema(self, options: Any) -> dict[str, Any]:
        return {"type": "string", "format": "email", "maxLength": 254}

    def normalise(self, value: Any, options: Any) -> str:
        return values.email(value)


@register
class PhoneType(FieldType):
    """Chinese mobile and landline numbers and international numbers, stored as E.164."""

    name = "phone"
    options_model = PhoneOptions
    operators = TEXT_OPERATORS

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("string", length=32)

    def value_schema(self, options: PhoneOptions) -> dict[str, Any]:
        return {"type": "string", "maxLength": 32}

    def normalise(self, value: Any, options: PhoneOptions) -> str:
        return values.phone(value, region=options.region)


@register
class UrlType(FieldType):
    name = "url"
    operators = TEXT_OPERATORS

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("string", length=2048)

    def value_schema(self, options: Any) -> dict[str, Any]:
        return {"type": "string", "format": "uri", "maxLength": 2048}

    def normalise(self, value: Any, options: Any) -> str:
        return values.url(value)


@register
class LookupType(FieldType):
    """A reference to a record of another entity (a foreign key to its id)."""

    name = "lookup"
    options_model = LookupOptions
    cel_type = "int"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("integer", references=self.references(options))

    def references(self, options: dict[str, Any]) -> str | None:
        return LookupOptions.model_validate(options).entity

    def value_schema(self, options: LookupOptions) -> dict[str, Any]:
        return {"type": "integer", "minimum": 1, "description": f"id of a `{options.entity}`"}

    def normalise(self, value: Any, options: LookupOptions) -> int:
        record_id = values.integer(value)
        if record_id < 1:
            raise FieldValueError(
                "invalid_id", f"{record_id} is not a record id", f"{record_id} 不是有效的记录编号"
            )
        return record_id

"""The built-in field types of the platform core."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from formloom.engine.fields.base import FieldType, register
from formloom.engine.fields.storage import Storage
from formloom.engine.names import API_NAME_PATTERN


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextOptions(_Options):
    max_length: int = Field(default=255, ge=1, le=4000)
    pattern: str | None = Field(default=None, max_length=500)


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


class SelectOption(_Options):
    value: str = Field(pattern=API_NAME_PATTERN)
    label: dict[str, str] = Field(min_length=1)
    color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")


class SelectOptions(_Options):
    choices: list[SelectOption] = Field(min_length=1, max_length=1000)

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


class LookupOptions(_Options):
    entity: str = Field(pattern=API_NAME_PATTERN)


@register
class TextType(FieldType):
    name = "text"
    options_model = TextOptions

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("string", length=TextOptions.model_validate(options).max_length)


@register
class LongTextType(FieldType):
    name = "long_text"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("text")


@register
class IntegerType(FieldType):
    name = "integer"
    options_model = IntegerOptions

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("integer")


@register
class DecimalType(FieldType):
    name = "decimal"
    options_model = DecimalOptions

    def storage(self, options: dict[str, Any]) -> Storage:
        parsed = DecimalOptions.model_validate(options)
        return Storage("decimal", precision=parsed.precision, scale=parsed.scale)


@register
class CurrencyType(FieldType):
    name = "currency"
    options_model = CurrencyOptions

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("decimal", precision=18, scale=CurrencyOptions.model_validate(options).scale)


@register
class PercentType(FieldType):
    name = "percent"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("decimal", precision=9, scale=4)


@register
class BooleanType(FieldType):
    name = "boolean"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("boolean")


@register
class DateType(FieldType):
    name = "date"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("date")


@register
class DateTimeType(FieldType):
    name = "datetime"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("datetime")


@register
class SingleSelectType(FieldType):
    name = "single_select"
    options_model = SelectOptions

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("string", length=63)


@register
class MultiSelectType(FieldType):
    name = "multi_select"
    options_model = SelectOptions

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("json")


@register
class EmailType(FieldType):
    name = "email"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("string", length=254)


@register
class PhoneType(FieldType):
    name = "phone"
    options_model = PhoneOptions

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("string", length=32)


@register
class UrlType(FieldType):
    name = "url"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("string", length=2048)


@register
class LookupType(FieldType):
    name = "lookup"
    options_model = LookupOptions

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("integer", references=self.references(options))

    def references(self, options: dict[str, Any]) -> str | None:
        return LookupOptions.model_validate(options).entity

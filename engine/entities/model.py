"""The entity document: an entity's fields, indexes and labels as published metadata."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from formloom.engine.labels import HelpText, Label
from formloom.engine.names import API_NAME_PATTERN

MAX_FIELDS = 500
MESSAGE_MAX = 500
MAX_DUPLICATE_FIELDS = 5
ENTITY_SCHEMA_VERSION = 1


class FieldDef(BaseModel):
    """One field of an entity."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=API_NAME_PATTERN, description="API name, also the column name")
    label: Label
    type: str = Field(description="A registered field type, e.g. `text`, `currency`, `lookup`")
    id: str | None = Field(
        default=None,
        pattern=r"^fld_[a-z0-9]{1,40}$",
        description="Stable identity assigned at first publish; keep it to rename a field",
    )
    renamed_from: str | None = Field(
        default=None,
        pattern=API_NAME_PATTERN,
        description="Previous API name when renaming a field in a document without ids",
    )
    required: bool = False
    unique: bool = False
    indexed: bool = False
    searchable: bool = False
    default: Any = None
    help: HelpText | None = None
    options: dict[str, Any] = Field(default_factory=dict, description="Options of the type")
    required_when: dict[str, Any] | None = Field(
        default=None,
        description=(
            "A structured condition (and/or/not groups of {field, op, value}); when the record's "
            "values match it, this field must have a value"
        ),
    )


class IndexDef(BaseModel):
    """A database index over one or more fields."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=API_NAME_PATTERN)
    fields: list[str] = Field(min_length=1, max_length=16)
    unique: bool = False


class RuleMessage(BaseModel):
    """What a rule tells the user, in Chinese and English."""

    model_config = ConfigDict(extra="forbid")

    zh: str = Field(min_length=1, max_length=MESSAGE_MAX)
    en: str = Field(min_length=1, max_length=MESSAGE_MAX)


class ValidationRule(BaseModel):
    """A CEL condition that blocks a save while it is true, e.g. `close_date < created_at`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=API_NAME_PATTERN)
    when: str = Field(
        min_length=1,
        max_length=2000,
        description="CEL expression over the record's fields; the save is refused when it is true",
    )
    message: RuleMessage
    field: str | None = Field(
        default=None,
        pattern=API_NAME_PATTERN,
        description="The field the error points at (none: the record as a whole)",
    )


class DuplicateRule(BaseModel):
    """Records whose values of ``fields`` all match count as duplicates of each other."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=API_NAME_PATTERN)
    fields: list[str] = Field(min_length=1, max_length=MAX_DUPLICATE_FIELDS)
    match: Literal["exact", "normalised"] = Field(
        default="exact",
        description=(
            "`normalised` ignores case and extra spaces in text (phone numbers are compared "
            "normalised to E.164)"
        ),
    )
    action: Literal["warn", "block"] = Field(
        default="warn",
        description="`warn`: 409 until the client confirms; `block`: refused (422)",
    )
    message: RuleMessage | None = None


class RetiredField(BaseModel):
    """A removed field whose column (and data) is kept until purged. Managed by the platform."""

    model_config = ConfigDict(extra="forbid")

    field: FieldDef
    removed_in_version: int = Field(ge=1)


class EntityDoc(BaseModel):
    """An entity: a real table with typed columns, plus the platform's system columns."""

    model_config = ConfigDict(extra="forbid", title="entity")

    schema_version: int = Field(default=ENTITY_SCHEMA_VERSION, ge=1)
    name: str = Field(pattern=API_NAME_PATTERN, description="API name, also the table name")
    label: Label
    description: str = Field(default="", max_length=2000)
    title_field: str | None = Field(default=None, pattern=API_NAME_PATTERN)
    fields: list[FieldDef] = Field(default_factory=list, max_length=MAX_FIELDS)
    indexes: list[IndexDef] = Field(default_factory=list, max_length=64)
    retired_fields: list[RetiredField] = Field(
        default_factory=list, description="Removed fields kept until purged (platform-managed)"
    )
    validation_rules: list[ValidationRule] = Field(default_factory=list, max_length=100)
    duplicate_rules: list[DuplicateRule] = Field(default_factory=list, max_length=20)

    def field(self, name: str) -> FieldDef | None:
        return next((f for f in self.fields if f.name == name), None)

    def retired(self, name: str) -> RetiredField | None:
        return next((r for r in self.retired_fields if r.field.name == name), None)

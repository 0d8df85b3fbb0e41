"""The entity document: an entity's fields, indexes and labels as published metadata."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from formloom.engine.labels import HelpText, Label
from formloom.engine.names import API_NAME_PATTERN

MAX_FIELDS = 500
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


class IndexDef(BaseModel):
    """A database index over one or more fields."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=API_NAME_PATTERN)
    fields: list[str] = Field(min_length=1, max_length=16)
    unique: bool = False


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

    def field(self, name: str) -> FieldDef | None:
        return next((f for f in self.fields if f.name == name), None)

    def retired(self, name: str) -> RetiredField | None:
        return next((r for r in self.retired_fields if r.field.name == name), None)

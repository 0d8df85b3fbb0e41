"""The field type contract and its registry.

A field type is one class (STYLE.md: no type switches spread over modules):
it validates its own options and says how the field is stored. The records
runtime adds normalisation, JSON Schema and filters to the same classes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from formloom.engine.errors import Issue, pointer
from formloom.engine.fields.storage import Storage
from formloom.engine.registry import Registry


class NoOptions(BaseModel):
    """Options of a field type that takes none."""

    model_config = ConfigDict(extra="forbid")


class FieldType(ABC):
    """Base class of every field type; subclasses set ``name`` and override what differs."""

    name: ClassVar[str]
    options_model: ClassVar[type[BaseModel]] = NoOptions

    def parse_options(self, options: dict[str, Any]) -> BaseModel:
        return self.options_model.model_validate(options)

    def check_options(self, options: dict[str, Any], *, at: str) -> list[Issue]:
        """Validate the field's ``options`` object; ``at`` is the JSON pointer of the field."""
        try:
            self.parse_options(options)
        except ValidationError as exc:
            return [
                Issue(
                    path=at + pointer("options", *err["loc"]),
                    code="invalid_option",
                    message=f"field type `{self.name}`: {err['msg']}",
                )
                for err in exc.errors()
            ]
        return []

    @abstractmethod
    def storage(self, options: dict[str, Any]) -> Storage:
        """The column type that holds this field's values."""

    def references(self, options: dict[str, Any]) -> str | None:
        """The entity this field points at (lookups), or None."""
        return None


field_types: Registry[FieldType] = Registry("field type")


def register(cls: type[FieldType]) -> type[FieldType]:
    """Class decorator: register one instance of a field type."""
    field_types.register(cls())
    return cls

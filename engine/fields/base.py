"""The field type contract and its registry.

A field type is one class (STYLE.md: no type switches spread over modules):
it validates its own options, says how the field is stored, normalises and
validates values (with Chinese and English messages), describes them in JSON
Schema, converts stored values back to JSON, and names its filter operators
and CEL type.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from formloom.engine.errors import EngineError, Issue, pointer
from formloom.engine.fields.storage import Storage
from formloom.engine.registry import Registry


class FieldValueError(EngineError):
    """A value does not fit its field; carries the message in English and Chinese."""

    def __init__(self, code: str, en: str, zh: str) -> None:
        super().__init__(en)
        self.code, self.en, self.zh = code, en, zh

    def message(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


#: Operators every type supports.
BASIC_OPERATORS = ("eq", "ne", "in", "not_in", "is_empty")
TEXT_OPERATORS = (*BASIC_OPERATORS, "contains", "starts_with")
ORDERED_OPERATORS = (*BASIC_OPERATORS, "gt", "ge", "lt", "le", "between")


class NoOptions(BaseModel):
    """Options of a field type that takes none."""

    model_config = ConfigDict(extra="forbid")


class FieldType(ABC):
    """Base class of every field type; subclasses set ``name`` and override what differs."""

    name: ClassVar[str]
    options_model: ClassVar[type[BaseModel]] = NoOptions
    #: Filter operators this type supports (see the records query language).
    operators: ClassVar[tuple[str, ...]] = BASIC_OPERATORS
    #: The CEL type of values, for formulas and validation rules.
    cel_type: ClassVar[str] = "string"
    #: True for fields without a column in the entity's table (their values live in
    #: other tables, e.g. child records): the planner, the table builder, lists and
    #: filters skip them, and the records writer saves them itself.
    virtual: ClassVar[bool] = False

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
        """The column type that holds this field's values (nominal when ``virtual``)."""

    def references(self, options: dict[str, Any]) -> str | None:
        """The entity this field points at (lookups), or None."""
        return None

    def junction_target(self, options: dict[str, Any]) -> str | None:
        """The entity a junction table links this field to (multi-lookups), or None."""
        return None

    @abstractmethod
    def value_schema(self, options: Any) -> dict[str, Any]:
        """JSON Schema of one (non-null) value; ``options`` is the parsed options model."""

    @abstractmethod
    def normalise(self, value: Any, options: Any) -> Any:
        """Turn a JSON value into the stored value, or raise :class:`FieldValueError`.

        ``value`` is never None (the records layer handles empty values).
        """

    def to_json(self, value: Any, options: Any) -> Any:
        """Turn a stored value into its JSON form (the default keeps it as it is)."""
        return value

    def operators_for(self, options: Any) -> tuple[str, ...]:
        """The filter operators of one field of this type (``options`` parsed).

        :attr:`operators` unless the type's values depend on its options (a formula's
        result type); filter parsers and filter builders ask this, not the class attribute.
        """
        return self.operators

    def is_empty(self, value: Any) -> bool:
        """Whether a stored value counts as empty for `required` checks."""
        return value is None or value == "" or value == []


field_types: Registry[FieldType] = Registry("field type")


def register(cls: type[FieldType]) -> type[FieldType]:
    """Class decorator: register one instance of a field type."""
    field_types.register(cls())
    return cls

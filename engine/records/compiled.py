"""An entity document compiled for the records runtime: fields with parsed options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from formloom.engine.entities import EntityDoc, FieldDef
from formloom.engine.fields import FieldType, field_types


@dataclass(frozen=True)
class CompiledField:
    """One field, its type and its parsed options."""

    definition: FieldDef
    field_type: FieldType
    options: BaseModel

    @property
    def name(self) -> str:
        return self.definition.name

    def label(self, lang: str) -> str:
        return self.definition.label.zh if lang == "zh" else self.definition.label.en

    def value_schema(self) -> dict[str, Any]:
        return self.field_type.value_schema(self.options)

    @property
    def operators(self) -> tuple[str, ...]:
        """The filter operators this field allows (see ``FieldType.operators_for``)."""
        return self.field_type.operators_for(self.options)

    def to_json(self, value: Any) -> Any:
        return None if value is None else self.field_type.to_json(value, self.options)


@dataclass(frozen=True)
class CompiledEntity:
    """An entity ready to check payloads and serialise records."""

    document: EntityDoc
    fields: dict[str, CompiledField]
    _by_kind: dict[type, dict[str, CompiledField]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def name(self) -> str:
        return self.document.name

    def fields_of(self, kind: type) -> Mapping[str, CompiledField]:
        """The fields whose type is a ``kind`` (computed, file, …) by name, in document order.

        Worked out once per kind: the checks of every record ask (``isinstance`` of an
        abstract class is slow, and an import asks for every row).
        """
        found = self._by_kind.get(kind)
        if found is None:
            found = {n: f for n, f in self.fields.items() if isinstance(f.field_type, kind)}
            self._by_kind[kind] = found
        return found

    @property
    def title_field(self) -> str | None:
        return self.document.title_field


def compile_entity(document: EntityDoc) -> CompiledEntity:
    """Parse every field's options once (documents are validated before they are published)."""
    fields = {}
    for f in document.fields:
        field_type = field_types.get(f.type)
        fields[f.name] = CompiledField(f, field_type, field_type.parse_options(f.options))
    return CompiledEntity(document, fields)

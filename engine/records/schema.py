"""The JSON Schema of an entity's records, as clients see them."""

from __future__ import annotations

from typing import Any

from formloom.engine.fields.computed import ComputedFieldType
from formloom.engine.records.compiled import CompiledEntity

_SYSTEM_PROPERTIES: dict[str, dict[str, Any]] = {
    "id": {"type": "integer", "readOnly": True},
    "version": {"type": "integer", "description": "Send it back on update (optimistic locking)"},
    "created_at": {"type": "string", "format": "date-time", "readOnly": True},
    "updated_at": {"type": "string", "format": "date-time", "readOnly": True},
    "created_by": {"type": ["integer", "null"], "readOnly": True},
    "updated_by": {"type": ["integer", "null"], "readOnly": True},
    "owner_id": {"type": ["integer", "null"]},
}


def record_schema(entity: CompiledEntity, *, lang: str = "en") -> dict[str, Any]:
    """JSON Schema (2020-12) of a record: user fields with labels, required ones, system fields."""
    properties: dict[str, Any] = dict(_SYSTEM_PROPERTIES)
    required = []
    for name, compiled in entity.fields.items():
        value = compiled.value_schema()
        schema: dict[str, Any] = {
            "title": compiled.label(lang),
            "anyOf": [value, {"type": "null"}],
            "x-formloom-type": compiled.field_type.name,
        }
        help_text = compiled.definition.help
        if help_text is not None and (help_text.zh or help_text.en):
            schema["description"] = help_text.zh if lang == "zh" else help_text.en
        if compiled.definition.default is not None:
            schema["default"] = compiled.definition.default
        if isinstance(compiled.field_type, ComputedFieldType):
            schema["readOnly"] = True
        if compiled.definition.required:
            required.append(name)
            schema = {**schema, "anyOf": [value]}
        properties[name] = schema
    label = entity.document.label
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": label.zh if lang == "zh" else label.en,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }

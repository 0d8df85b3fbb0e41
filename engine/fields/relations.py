"""Relation field types whose values live outside the entity's own table.

``multi_lookup``: several records of another entity, in order, kept in a
junction table (``formloom.platform.record_links``).

``child_table``: the records of another entity that belong to this one (quote
lines of a quote). The child entity has a lookup back to this entity
(``options.field``, with ``on_delete: cascade``); the field itself has no
column (``virtual``). The records writer saves the listed child rows in the
parent's transaction (see ``formloom.platform.record_children``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from formloom.engine.fields import values
from formloom.engine.fields.base import FieldType, FieldValueError, register
from formloom.engine.fields.storage import Storage
from formloom.engine.names import API_NAME_PATTERN

MAX_CHILD_ROWS = 500
MAX_LINKS = 1000


class ChildTableOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity: str = Field(pattern=API_NAME_PATTERN, description="The child entity")
    field: str = Field(
        pattern=API_NAME_PATTERN,
        description="Its lookup field that points at this entity (on_delete `cascade`)",
    )


@register
class ChildTableType(FieldType):
    """Child records saved with the parent: a list of child payloads (``id`` for existing ones)."""

    name = "child_table"
    options_model = ChildTableOptions
    operators = ()
    cel_type = "dyn"
    virtual = True

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("json")

    def value_schema(self, options: ChildTableOptions) -> dict[str, Any]:
        return {
            "type": "array",
            "maxItems": MAX_CHILD_ROWS,
            "items": {"type": "object"},
            "description": (
                f"`{options.entity}` records of this record: rows without `id` are created, "
                "rows with `id` and `version` updated, unlisted ones deleted"
            ),
        }

    def normalise(self, value: Any, options: ChildTableOptions) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
            raise values.wrong_type(value, "a list of objects", "对象列表")
        if len(value) > MAX_CHILD_ROWS:
            raise FieldValueError(
                "too_many",
                f"at most {MAX_CHILD_ROWS} child rows, got {len(value)}",
                f"最多 {MAX_CHILD_ROWS} 行子记录，实际 {len(value)} 行",
            )
        return list(value)


class MultiLookupOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity: str = Field(pattern=API_NAME_PATTERN, description="The entity looked up")


@register
class MultiLookupType(FieldType):
    """References to several records of another entity, kept in order in a junction table.

    The junction table is ``<entity>__<field>`` (see
    ``formloom.engine.entities.changes.junction_table_name``); the field has no column.
    Filters test the linked records that are not in the recycle bin (the ids a read
    returns): ``contains`` and ``in`` "links to any of these ids", ``not_in`` "links
    to none of them", ``is_empty`` "links to none at all".
    """

    name = "multi_lookup"
    options_model = MultiLookupOptions
    operators = ("contains", "in", "not_in", "is_empty")
    cel_type = "dyn"
    virtual = True

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("json")

    def junction_target(self, options: dict[str, Any]) -> str | None:
        return MultiLookupOptions.model_validate(options).entity

    def value_schema(self, options: MultiLookupOptions) -> dict[str, Any]:
        return {
            "type": "array",
            "maxItems": MAX_LINKS,
            "items": {"type": "integer", "minimum": 1},
            "description": f"ids of `{options.entity}` records, in order",
        }

    def normalise(self, value: Any, options: MultiLookupOptions) -> list[int]:
        if not isinstance(value, list):
            raise values.wrong_type(value, "a list of record ids", "记录编号列表")
        ids: list[int] = []
        for item in value:
            record_id = values.integer(item)
            if record_id < 1:
                raise FieldValueError(
                    "invalid_id",
                    f"{record_id} is not a record id",
                    f"{record_id} 不是有效的记录编号",
                )
            if record_id not in ids:
                ids.append(record_id)
        if len(ids) > MAX_LINKS:
            raise FieldValueError(
                "too_many",
                f"at most {MAX_LINKS} records, got {len(ids)}",
                f"最多 {MAX_LINKS} 条记录",
            )
        return ids

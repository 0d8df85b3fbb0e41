"""Records as JSON: system fields first, then the entity's fields in document order.

Fields without a column (``virtual``: child tables) are left out; the records
service adds child rows to single-record reads (``formloom.platform.record_children``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from formloom.platform.entity_runtime import RuntimeEntity

SYSTEM_FIELDS = (
    "id",
    "version",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "owner_id",
)


def record_to_json(
    entity: RuntimeEntity, row: Mapping[str, Any], *, fields: Iterable[str] | None = None
) -> dict[str, Any]:
    """One stored row as JSON; ``fields`` limits the user fields returned (system ones stay)."""
    out: dict[str, Any] = {}
    for name in SYSTEM_FIELDS:
        value = row.get(name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    deleted_at = row.get("deleted_at")
    if deleted_at is not None:
        out["deleted_at"] = deleted_at.isoformat()
    wanted = entity.compiled.fields if fields is None else fields
    for name in wanted:
        compiled = entity.compiled.fields[name]
        if not compiled.field_type.virtual:
            out[name] = compiled.to_json(row.get(name))
    return out

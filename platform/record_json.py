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
    get = row.get
    out: dict[str, Any] = {}
    for name in SYSTEM_FIELDS:
        value = get(name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    deleted_at = get("deleted_at")
    if deleted_at is not None:
        out["deleted_at"] = deleted_at.isoformat()
    serialisers = entity.serialisers
    for name in serialisers if fields is None else fields:
        serialiser = serialisers.get(name)
        if serialiser is not None:
            value = get(name)
            out[name] = None if value is None else serialiser[0](value, serialiser[1])
        elif name not in entity.compiled.fields:
            raise KeyError(name)
    return out

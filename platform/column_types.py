"""Map the engine's storage descriptions to SQLAlchemy column types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, Numeric, String, Text
from sqlalchemy.types import TypeEngine

from formloom.engine.fields import Storage
from formloom.engine.fields.storage import StorageKind
from formloom.platform.tables import UtcDateTime

_TYPES: dict[StorageKind, Callable[[Storage], TypeEngine[Any]]] = {
    "string": lambda s: String(s.length),
    "text": lambda s: Text(),
    "integer": lambda s: BigInteger(),
    "decimal": lambda s: Numeric(s.precision, s.scale, asdecimal=True),
    "boolean": lambda s: Boolean(),
    "date": lambda s: Date(),
    "datetime": lambda s: UtcDateTime(),
    "json": lambda s: JSON(none_as_null=True),
}


def sql_type(storage: Storage) -> TypeEngine[Any]:
    """The column type that holds values of ``storage``."""
    return _TYPES[storage.kind](storage)

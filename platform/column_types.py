"""Map the engine's storage descriptions to SQLAlchemy column types."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Numeric,
    String,
    Text,
)
from sqlalchemy.types import TypeEngine

from formloom.engine.fields import Storage
from formloom.platform.tables import UtcDateTime


def sql_type(storage: Storage) -> TypeEngine[object]:
    """The column type that holds values of ``storage``."""
    kind = storage.kind
    result: TypeEngine[object]
    if kind == "string":
        result = String(storage.length)
    elif kind == "text":
        result = Text()
    elif kind == "integer":
        result = BigInteger()
    elif kind == "decimal":
        result = Numeric(storage.precision, storage.scale, asdecimal=True)
    elif kind == "boolean":
        result = Boolean()
    elif kind == "date":
        result = Date()
    elif kind == "datetime":
        result = UtcDateTime()
    else:
        result = JSON()
    return result

"""Map the engine's storage descriptions to SQLAlchemy column types.

Decimals (decimal, currency, percent, decimal formulas and rollups) are exact on
both databases (:class:`ExactDecimal`): ``NUMERIC(p,s)`` on PostgreSQL; on SQLite,
whose ``NUMERIC`` affinity keeps numbers as 64-bit integers or doubles (a double
holds 15 significant digits: ``12345678901234567.89`` would come back as
``12345678901234568``), the value times ``10**scale`` as an INTEGER. Integers
compare, sort and sum exactly in SQL, so filters, keyset pages, unique indexes,
duplicate rules and ``sum`` rollups stay in SQL; reads divide by ``10**scale``.

Why not TEXT on SQLite: text compares as text (``"9" > "10"``), and ``sum`` would
read it back as doubles. The cost of scaled integers: at most 18 significant
digits fit (``|value| * 10**scale`` below ``2**63``); a value beyond that is refused
with :class:`DecimalOutOfRange` (never rounded), and a ``sum`` that overflows fails
(SQLite's ``integer overflow``) rather than coming back inexact.

SQLite columns in this form are declared ``DECIMAL_SCALED(p,s)``; columns of
databases created before are ``NUMERIC(p,s)`` and hold plain numbers:
``formloom.platform.schema_sync.upgrade_decimal_columns`` converts them.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, Numeric, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.functions import ReturnTypeFromArgs
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType

from formloom.engine.fields import Storage
from formloom.engine.fields.storage import StorageKind
from formloom.platform.tables import UtcDateTime

#: The declared type of a scaled-decimal column on SQLite (before ``(p,s)``).
SCALED_DECIMAL = "DECIMAL_SCALED"
_LARGEST = 2**63 - 1


class DecimalOutOfRange(ValueError):
    """A decimal has more significant digits than a scaled 64-bit integer holds (SQLite)."""


class _ScaledDecimalColumn(UserDefinedType[Any]):
    """The SQLite column type of a scaled decimal: ``DECIMAL_SCALED(p,s)`` (NUMERIC affinity,
    which keeps integers as integers)."""

    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        self.precision, self.scale = precision, scale

    def get_col_spec(self, **kw: Any) -> str:
        return f"{SCALED_DECIMAL}({self.precision},{self.scale})"


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact decimal with ``precision`` digits, ``scale`` of them after the point.

    PostgreSQL: ``NUMERIC(precision, scale)``. SQLite: the value times ``10**scale``
    as an integer (values are rounded half up to ``scale`` first, as the field types
    store them). Reads give :class:`~decimal.Decimal` values with ``scale`` places.
    """

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision, scale, asdecimal=True)
        self.precision, self.scale = precision, scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_ScaledDecimalColumn(self.precision, self.scale))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return to_scaled(value, self.scale)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name != "sqlite":
            return value if isinstance(value, Decimal) else Decimal(str(value))
        return from_scaled(value, self.scale)

    def coerce_compared_value(self, op: Any, value: Any) -> TypeEngine[Any]:
        """Values compared with the column are bound as the column's (scaled on SQLite)."""
        return self


def to_scaled(value: Any, scale: int) -> int:
    """``value`` times ``10**scale``, rounded half up, as an integer that fits 64 bits."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    scaled = int(number.scaleb(scale).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if abs(scaled) > _LARGEST:
        raise DecimalOutOfRange(
            f"{number} has more significant digits than a decimal with {scale} places holds "
            f"on SQLite (at most {_LARGEST // 10**scale}); use PostgreSQL for larger values"
        )
    return scaled


def from_scaled(value: Any, scale: int) -> Decimal:
    """A stored scaled value (an integer; a double from ``avg``) as a decimal with ``scale``
    places."""
    if isinstance(value, int):
        exact = Decimal(value)
    elif isinstance(value, float):
        exact = Decimal(repr(value))
    else:
        exact = Decimal(str(value))
    step = Decimal(1).scaleb(-scale)
    return exact.scaleb(-scale).quantize(step, rounding=ROUND_HALF_UP)


class avg(ReturnTypeFromArgs[Any]):  # lowercase: SQLAlchemy registers it as `func.avg`
    """``func.avg(column)`` typed like its column, as ``sum``, ``min`` and ``max`` are.

    Registered with SQLAlchemy's generic functions on import: an average of scaled
    decimals (SQLite) then reads back through :class:`ExactDecimal` like the column.
    """

    inherit_cache = True


_TYPES: dict[StorageKind, Callable[[Storage], TypeEngine[Any]]] = {
    "string": lambda s: String(s.length),
    "text": lambda s: Text(),
    "integer": lambda s: BigInteger(),
    "decimal": lambda s: ExactDecimal(s.precision or 18, s.scale or 0),
    "boolean": lambda s: Boolean(),
    "date": lambda s: Date(),
    "datetime": lambda s: UtcDateTime(),
    "json": lambda s: JSON(none_as_null=True),
}


def sql_type(storage: Storage) -> TypeEngine[Any]:
    """The column type that holds values of ``storage``."""
    return _TYPES[storage.kind](storage)

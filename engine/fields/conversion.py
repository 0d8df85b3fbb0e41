"""What happens to stored values when a field's storage changes.

:func:`plan_conversion` compares two :class:`Storage` values and answers with a
:class:`Conversion`: whether the change is possible at all, how values are
transformed (an abstract transform the platform compiles to SQL per dialect)
and, for lossy changes, which stored values would lose information (a
``LossCheck`` the platform counts before anything is changed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from formloom.engine.fields.storage import Storage

TransformKind = Literal["cast", "wrap_json_array", "first_json_element", "truncate", "round"]
LossKind = Literal["longer_than", "fraction_beyond", "more_than_one_element", "digits_beyond"]


@dataclass(frozen=True)
class LossCheck:
    """Stored values matching this check lose information; ``limit`` is a length or a scale."""

    kind: LossKind
    limit: int = 0

    def describe(self) -> str:
        return {
            "longer_than": f"values longer than {self.limit} characters would be truncated",
            "fraction_beyond": (
                f"values with more than {self.limit} decimal places would be rounded"
            ),
            "more_than_one_element": "values with more than one choice would keep only the first",
            "digits_beyond": (
                f"values with more than {self.limit} digits before the decimal point do not fit"
            ),
        }[self.kind]


@dataclass(frozen=True)
class Conversion:
    """How to move values from ``source`` storage to ``target`` storage.

    ``possible`` is False when the platform cannot convert at all; ``reason``
    then says what to do instead. ``loss`` is set for changes that may lose data
    (allowed when forced); ``overflow`` names values that cannot be stored in the
    target at all (refused even when forced).
    """

    source: Storage
    target: Storage
    possible: bool
    transform: TransformKind = "cast"
    loss: LossCheck | None = None
    reason: str = ""
    overflow: LossCheck | None = None

    @property
    def changes_column(self) -> bool:
        return self.source != self.target


_NUMERIC = ("integer", "decimal")
_INTEGER_DIGITS = 19
#: Select values are API names: at most 63 characters.
_LONGEST_CHOICE = 63
_TEXTUAL = ("string", "text")


def plan_conversion(source: Storage, target: Storage) -> Conversion:
    """Decide how (and whether) values stored as ``source`` become ``target``."""
    if source == target:
        return Conversion(source, target, possible=True)
    if source.references or target.references:
        return _impossible(source, target, "a lookup cannot change its type or target entity")
    s, t = source.kind, target.kind
    if s in _TEXTUAL and t == "text":
        return Conversion(source, target, possible=True)
    if s in _TEXTUAL and t == "string":
        assert target.length is not None
        if s == "string" and source.length is not None and source.length <= target.length:
            return Conversion(source, target, possible=True)
        return Conversion(source, target, True, "truncate", LossCheck("longer_than", target.length))
    if s in _NUMERIC and t in _TEXTUAL:
        if t == "text" or (target.length or 0) >= _widest_number(source):
            return Conversion(source, target, possible=True)
        assert target.length is not None
        return Conversion(source, target, True, "truncate", LossCheck("longer_than", target.length))
    if s in _NUMERIC and t in _NUMERIC:
        overflow = _overflow(source, target)
        if s == "integer" or (t == "decimal" and (source.scale or 0) <= (target.scale or 0)):
            return Conversion(source, target, possible=True, overflow=overflow)
        loss = LossCheck("fraction_beyond", target.scale or 0)
        return Conversion(source, target, True, "round", loss, overflow=overflow)
    if s == "string" and t == "json":
        return Conversion(source, target, True, "wrap_json_array")
    if s == "json" and t == "string" and (target.length or 0) >= _LONGEST_CHOICE:
        return Conversion(
            source, target, True, "first_json_element", LossCheck("more_than_one_element")
        )
    if s == "date" and t == "datetime":
        return Conversion(source, target, possible=True)
    return _impossible(
        source,
        target,
        f"values stored as {source.describe()} cannot be converted to {target.describe()}",
    )


def _integer_digits(storage: Storage) -> int:
    if storage.kind == "integer":
        return _INTEGER_DIGITS
    return (storage.precision or 0) - (storage.scale or 0)


def _overflow(source: Storage, target: Storage) -> LossCheck | None:
    """Values of ``source`` too large for ``target`` (None when every value fits)."""
    room = _integer_digits(target)
    if room >= _integer_digits(source):
        return None
    return LossCheck("digits_beyond", room)


def _widest_number(source: Storage) -> int:
    """The most characters a number stored as ``source`` takes as text (sign and point)."""
    if source.kind == "integer":
        return len(str(-(2**63)))
    return (source.precision or 0) + 2


def _impossible(source: Storage, target: Storage, why: str) -> Conversion:
    return Conversion(
        source,
        target,
        possible=False,
        reason=f"{why}; add a new field, copy the data over, then remove the old field",
    )

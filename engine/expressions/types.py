"""CEL types as the checker sees them, spelled as field types declare them (``cel_type``).

Scalars are ``int``, ``double``, ``string``, ``bool``, ``timestamp`` and
``duration``; then ``list(T)`` and ``map(string, T)`` of a scalar or ``dyn``,
and ``dyn`` (any JSON-like value, checked only at run time). ``null`` is the
type of the ``null`` literal; ``[]`` is a ``list(dyn)``. Every field value may
also be null at run time (see the package documentation for what that means).
"""

from __future__ import annotations

SCALARS = frozenset(("int", "double", "string", "bool", "timestamp", "duration"))
NUMERIC = frozenset(("int", "double"))
ORDERED = frozenset(("int", "double", "string", "timestamp", "duration"))
DYN = "dyn"
NULL = "null"
#: The type of a sub-expression that already has a reported problem (no further messages).
ERROR = "error"


def list_of(element: str) -> str:
    return f"list({element})"


def element_of(cel_type: str) -> str | None:
    """The element type of a list type, or None for other types."""
    if cel_type.startswith("list(") and cel_type.endswith(")"):
        return cel_type[5:-1]
    return None


def value_of(cel_type: str) -> str | None:
    """The value type of a ``map(string, T)`` type, or None for other types."""
    if cel_type.startswith("map(string, ") and cel_type.endswith(")"):
        return cel_type[12:-1]
    return None


def is_declarable(cel_type: str) -> bool:
    """Whether a field or a result may have this type."""
    inner = element_of(cel_type) or value_of(cel_type)
    if inner is not None:
        return inner in SCALARS or inner == DYN
    return cel_type in SCALARS or cel_type == DYN


def unify(first: str, second: str) -> str | None:
    """The type both can be used as, or None.

    ``int`` widens to ``double``; ``null`` fits anything; ``dyn`` meets
    anything (as ``dyn``); lists and maps unify element by element.
    """
    if first == second:
        return first
    if first in NUMERIC and second in NUMERIC:
        return "double"
    if first == NULL:
        return second
    if second == NULL:
        return first
    if DYN in (first, second):
        return DYN
    for inner, wrap in ((element_of, list_of), (value_of, map_of)):
        a, b = inner(first), inner(second)
        if a is not None and b is not None:
            common = a if b == DYN else b if a == DYN else unify(a, b)
            return None if common is None else wrap(common)
    return None


def map_of(value: str) -> str:
    return f"map(string, {value})"

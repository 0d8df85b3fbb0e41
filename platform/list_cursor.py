"""Sort keys and keyset cursors of record lists.

A list is ordered by the client's sort keys and then by ``id``, so every row has
a unique position. Empty values (NULL) come **last** in both directions
(``NULLS LAST`` on both databases), and the keyset predicate that starts the
next page agrees with that order. A cursor is the base64url JSON of the sort it
belongs to and the last row's key values; it is checked when it comes back.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    UnaryExpression,
    and_,
    false,
    literal,
    or_,
    tuple_,
)

from formloom.engine.fields.storage import StorageKind

#: Columns that are never NULL (their keyset predicate needs no NULL handling).
NOT_NULL = ("id", "created_at", "updated_at")
MAX_CURSOR = 65_536


@dataclass(frozen=True)
class SortKey:
    """One ORDER BY term: a field, its direction, and how its values are stored."""

    field: str
    descending: bool
    kind: StorageKind

    @property
    def nullable(self) -> bool:
        return self.field not in NOT_NULL

    @property
    def spelled(self) -> str:
        return ("-" if self.descending else "") + self.field


class CursorInvalid(ValueError):
    """A cursor that this sort cannot continue from; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def sort_signature(keys: Sequence[SortKey]) -> str:
    """The sort as text, e.g. ``-amount,name,-id`` (a cursor names the sort it belongs to)."""
    return ",".join(k.spelled for k in keys)


def order_by(keys: Sequence[SortKey], table: Table) -> list[UnaryExpression[Any]]:
    terms = []
    for key in keys:
        column = table.c[key.field]
        term = column.desc() if key.descending else column.asc()
        terms.append(term.nulls_last() if key.nullable else term)
    return terms


def after_clause(
    keys: Sequence[SortKey], values: Sequence[Any], table: Table
) -> ColumnElement[bool]:
    """Rows that come after the row with key ``values`` in the order of ``keys``.

    With NULLS LAST, a row is after ``(v1, …, vn)`` when for some i the first i-1
    keys are equal (``IS NULL`` for a NULL value) and key i is beyond ``vi``:
    greater (ascending) or smaller (descending) than a non-NULL ``vi``, or NULL
    itself; nothing is beyond a NULL. NOT NULL keys in one direction use a row
    value comparison, which both databases can answer from an index.
    """
    columns = [table.c[k.field] for k in keys]
    if len(keys) == 1 and not keys[0].nullable:
        bound = literal(values[0], columns[0].type)
        return columns[0] < bound if keys[0].descending else columns[0] > bound
    if not any(k.nullable for k in keys) and len({k.descending for k in keys}) == 1:
        row = tuple_(*columns)
        key_row = tuple_(*(literal(v, c.type) for v, c in zip(values, columns, strict=True)))
        return row < key_row if keys[0].descending else row > key_row
    alternatives = []
    for i, (key, column, value) in enumerate(zip(keys, columns, values, strict=True)):
        if value is None:
            continue
        key_value = literal(value, column.type)
        beyond = column < key_value if key.descending else column > key_value
        if key.nullable:
            beyond = or_(beyond, column.is_(None))
        same = [
            c.is_(None) if v is None else c == literal(v, c.type)
            for c, v in zip(columns[:i], values[:i], strict=True)
        ]
        alternatives.append(and_(*same, beyond))
    return or_(false(), *alternatives)


def split_after_clause(
    keys: Sequence[SortKey], values: Sequence[Any], table: Table
) -> tuple[ColumnElement[bool], ColumnElement[bool] | None]:
    """:func:`after_clause` as ``(range, tail)`` an index can answer by seeking.

    For the common sort, one nullable key followed by NOT NULL keys in the same
    direction (``close_date``, then ``id``), and a cursor whose value for that key
    is not NULL: the rows after the cursor are first the non-NULL rows beyond it,
    a row value comparison (``(close_date, id) > (:v, :id)``) that starts an index
    range at the cursor, and then, NULLs last, every row whose key is NULL
    (``tail``), in the order of the remaining keys. The caller asks for the tail only
    when the range holds fewer rows than a page. Any other sort or cursor gives
    ``(after_clause(...), None)``: the OR of :func:`after_clause` makes the database
    walk the rows before the cursor again, page after page.
    """
    first, rest = keys[0], keys[1:]
    if (
        not rest
        or not first.nullable
        or values[0] is None
        or any(k.nullable for k in rest)
        or any(k.descending != first.descending for k in rest)
    ):
        return after_clause(keys, values, table), None
    columns = [table.c[k.field] for k in keys]
    row = tuple_(*columns)
    key_row = tuple_(*(literal(v, c.type) for v, c in zip(values, columns, strict=True)))
    beyond = row < key_row if first.descending else row > key_row
    return beyond, columns[0].is_(None)


def encode_cursor(keys: Sequence[SortKey], row: Mapping[str, Any]) -> str:
    """The cursor that continues after ``row``."""
    body = {"sort": sort_signature(keys), "key": [_to_json(row[k.field]) for k in keys]}
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, keys: Sequence[SortKey]) -> list[Any]:
    """The key values ``cursor`` carries, checked against ``keys`` (else :class:`CursorInvalid`)."""
    body = _body(cursor)
    expected = sort_signature(keys)
    if body["sort"] != expected:
        raise CursorInvalid(
            "cursor_sort_mismatch",
            f"the cursor belongs to a list sorted by `{body['sort']}`, but this request sorts "
            f"by `{expected}`; repeat the sort of the request that returned the cursor, or "
            "start again without `after`",
        )
    key = body["key"]
    if not isinstance(key, list) or len(key) != len(keys):
        raise _not_ours("its key does not match the sort")
    return [_from_json(value, k) for value, k in zip(key, keys, strict=True)]


def _body(cursor: str) -> dict[str, Any]:
    if len(cursor) > MAX_CURSOR:
        raise _not_ours("it is too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError):
        raise _not_ours("it is not base64 JSON") from None
    if not isinstance(body, dict) or set(body) != {"sort", "key"}:
        raise _not_ours("its content is not a cursor")
    if not isinstance(body["sort"], str):
        raise _not_ours("its content is not a cursor")
    return body


def _not_ours(why: str) -> CursorInvalid:
    return CursorInvalid(
        "invalid_cursor",
        f"`after` is not a cursor this API returned ({why}); pass the `next` value of the "
        "previous page unchanged, or start again without `after`",
    )


def _to_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):  # dates and datetimes
        return value.isoformat()
    return value


def _from_json(value: Any, key: SortKey) -> Any:
    """A key value back in its stored type (None only where the column may be NULL)."""
    if value is None:
        if key.nullable:
            return None
        raise _not_ours(f"`{key.field}` cannot be empty")
    kind = key.kind
    plain = _PLAIN_JSON.get(kind)
    if (
        plain is not None
        and isinstance(value, plain)
        and isinstance(value, bool) == (kind == "boolean")
    ):
        return value
    if isinstance(value, str):
        try:
            parsed = _FROM_TEXT[kind](value) if kind in _FROM_TEXT else None
        except (InvalidOperation, ValueError):
            parsed = None
        if parsed is not None:
            return parsed
    raise _not_ours(f"its value for `{key.field}` is not a {kind} value")


def _decimal(text: str) -> Decimal | None:
    number = Decimal(text)
    return number if number.is_finite() else None


def _moment(text: str) -> datetime | None:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else None


#: Kinds whose key values are plain JSON scalars.
_PLAIN_JSON: dict[str, type] = {"integer": int, "boolean": bool, "string": str, "text": str}
#: Kinds whose key values travel as text.
_FROM_TEXT: dict[str, Callable[[str], Any]] = {
    "decimal": _decimal,
    "date": date.fromisoformat,
    "datetime": _moment,
}

"""Compile parsed conditions (``formloom.engine.conditions``) to SQLAlchemy clauses.

The clause selects exactly the rows whose values ``Condition.matches`` accepts,
on SQLite and on PostgreSQL:

- SQL comparisons with NULL are unknown, not false. Under ``and``/``or`` an
  unknown test behaves like a false one (a row is kept only when the whole
  clause is true), so tests are guarded (``col IS NOT NULL AND …``) only where a
  ``not`` would turn unknown into true.
- ``contains``/``starts_with`` are case-insensitive ``LIKE`` patterns with ``%``,
  ``_`` and the escape character itself escaped. PostgreSQL uses ``ILIKE``
  (which a pg_trgm index can serve); SQLite lowers both sides, and its
  ``lower()`` folds ASCII letters only (Chinese has no case; other scripts
  match case-sensitively there).
- Multi-choice and tag fields hold a JSON array: ``has_any`` is an ``EXISTS``
  over ``json_each`` (SQLite) or ``json_array_elements_text`` (PostgreSQL); a
  value that is not an array (SQL NULL, JSON ``null``) counts as no element.
  Other JSON values (documents) are empty when SQL NULL or JSON ``null``.
- Multi-lookups have no column: ``has_any`` is an ``EXISTS`` over the field's
  junction table and ``is_empty`` a ``NOT EXISTS``, both counting only links to
  targets that are not in the recycle bin, so a filter sees exactly the ids a read
  of the record returns (reads do not apply the target's read scope either: the ids
  are the record's value). The junction's primary key (``record_id``, ``target_id``)
  serves both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Table,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
)

from formloom.engine.conditions import (
    AllOf,
    AnyOf,
    Condition,
    FieldTest,
    Not,
    Range,
)
from formloom.platform.entity_tables import junction_table
from formloom.platform.record_references import record_table

#: The escape character of LIKE patterns built here.
LIKE_ESCAPE = "/"


def condition_clause(condition: Condition, table: Table, *, dialect: str) -> ColumnElement[bool]:
    """The WHERE clause selecting the rows of ``table`` that ``condition`` matches.

    ``dialect`` is ``sqlite`` or ``postgresql`` (``Connection.dialect.name``).
    """
    return _clause(condition, table, dialect, negated=False)


def like_escaped(text: str) -> str:
    """``text`` with the LIKE wildcards ``%`` and ``_`` (and the escape character) escaped."""
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def text_contains(column: ColumnElement[Any], text: str) -> ColumnElement[bool]:
    """Case-insensitive substring test (``text`` is matched literally)."""
    return column.ilike(f"%{like_escaped(text)}%", escape=LIKE_ESCAPE)


def _clause(
    condition: Condition, table: Table, dialect: str, *, negated: bool
) -> ColumnElement[bool]:
    if isinstance(condition, AllOf):
        parts = [_clause(c, table, dialect, negated=negated) for c in condition.conditions]
        return and_(true(), *parts)
    if isinstance(condition, AnyOf):
        parts = [_clause(c, table, dialect, negated=negated) for c in condition.conditions]
        return or_(false(), *parts)
    if isinstance(condition, Not):
        return not_(_clause(condition.condition, table, dialect, negated=not negated))
    compiled = condition.compiled
    target = compiled.field_type.junction_target(compiled.definition.options)
    if target is not None:
        return _linked(condition, table, target)
    column = table.c[condition.field]
    test = _test(condition, column, dialect)
    if negated and condition.may_be_unknown:
        return and_(column.is_not(None), test)
    return test


def _test(test: FieldTest, column: ColumnElement[Any], dialect: str) -> ColumnElement[bool]:
    op, value = test.op, test.value
    if op == "is_empty":
        empty = _empty(test, column, dialect)
        return empty if value else not_(empty)
    if op == "has_any":
        return _has_any(column, list(value), dialect)
    if op == "contains":
        return text_contains(column, value)
    if op == "starts_with":
        return column.ilike(f"{like_escaped(value)}%", escape=LIKE_ESCAPE)
    if op == "range":
        return _range(column, value)
    if op == "in":
        return column.in_(list(value))
    if op == "not_in":
        return or_(column.is_(None), column.not_in(list(value)))
    if op == "ne":
        return or_(column.is_(None), column != value)
    comparisons = {
        "eq": column.__eq__,
        "gt": column.__gt__,
        "ge": column.__ge__,
        "lt": column.__lt__,
        "le": column.__le__,
    }
    compared: ColumnElement[bool] = comparisons[op](value)
    return compared


def _range(column: ColumnElement[Any], bounds: Range) -> ColumnElement[bool]:
    parts = []
    if bounds.low is not None:
        parts.append(column >= bounds.low)
    if bounds.high is not None:
        parts.append(column <= bounds.high if bounds.include_high else column < bounds.high)
    return and_(*parts)


def _empty(test: FieldTest, column: ColumnElement[Any], dialect: str) -> ColumnElement[bool]:
    """Never NULL: true for NULL, ``''`` (text), no element (lists) and JSON ``null``."""
    if test.shape == "list":
        return func.json_array_length(_json_array(column, dialect)) == 0
    if test.shape == "text":
        return or_(column.is_(None), column == "")
    if test.shape == "document":
        json_type = func.json_typeof if dialect == "postgresql" else func.json_type
        return or_(column.is_(None), json_type(column) == "null")
    return column.is_(None)


def _json_array(column: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """The column's JSON array, or an empty array when it holds anything else (or NULL)."""
    if dialect == "postgresql":
        return case(
            (func.json_typeof(column) == "array", column),
            else_=cast(literal_column("'[]'"), JSON),
        )
    return case((func.json_type(column) == "array", column), else_=literal_column("'[]'"))


def _has_any(column: ColumnElement[Any], choices: list[str], dialect: str) -> ColumnElement[bool]:
    array = _json_array(column, dialect)
    if dialect == "postgresql":
        elements = func.json_array_elements_text(array).table_valued("value").render_derived()
    else:
        elements = func.json_each(array).table_valued("value")
    return exists(select(literal(1)).select_from(elements).where(elements.c.value.in_(choices)))


def _linked(test: FieldTest, table: Table, target: str) -> ColumnElement[bool]:
    """A test on a multi-lookup: whether the row links to live targets (never NULL)."""
    links = junction_table(table.name, test.field, target).alias()
    targets = record_table(target).alias()
    live = (
        select(literal(1))
        .select_from(links.join(targets, targets.c.id == links.c.target_id))
        .where(links.c.record_id == table.c.id, targets.c.deleted_at.is_(None))
    )
    if test.op == "is_empty":
        linked = exists(live)
        return not_(linked) if test.value else linked
    if test.op == "has_any":
        return exists(live.where(links.c.target_id.in_(list(test.value))))
    raise ValueError(f"multi-lookup field `{test.field}` cannot be tested with `{test.op}`")

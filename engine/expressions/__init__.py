"""Expressions: formulas, validation rules and advanced conditions in CEL (DESIGN.md §4).

Compile once when metadata is saved, evaluate for every record::

    total = compile_expression(
        "amount * (1 - discount / 100.0)", {"amount": "double", "discount": "double"},
        result="double",
    )
    total.evaluate({"amount": Decimal("200"), "discount": Decimal("10")}, now=now)  # 180.0
    total.referenced_fields  # frozenset({"amount", "discount"})

``fields`` maps each field's API name to its field type's ``cel_type``.
:class:`ExpressionInvalid` lists every problem with its position;
:class:`ExpressionError` is a failure while evaluating (division by zero, an
empty field in arithmetic…).

The language
============
A subset of CEL (https://github.com/google/cel-spec), type-checked here and run
by the Rust CEL interpreter of ``common-expression-language``.

* **Fields** are named directly: ``amount``, ``close_date`` (not
  ``record.amount``).
* **Literals**: ``42``, ``0x2A``, ``2.5``, ``1e6``, ``'text'``, ``"text"``,
  ``'''multi-line'''``, ``r'raw\\n'``, ``true``, ``false``, ``null``,
  ``['a', 'b']``. No maps, bytes or unsigned integers.
* **Types**: ``int`` (64-bit), ``double``, ``string``, ``bool``, ``timestamp``
  (date and datetime fields), ``duration``, ``list(T)``, ``map(string, T)``
  (region, address…) and ``dyn`` (JSON values: checked only at run time, so
  turn them into a typed result with ``int(…)``, ``string(…)``, ``… == true``).
* **Operators**: ``+ - * / %``, ``== != < <= > >=``, ``&& || !``,
  ``cond ? a : b``, ``x in list``, ``list[i]``, ``map.key``, ``map['key']``,
  ``'key' in map``. ``int`` and ``double`` mix
  freely: the ``int`` side is converted (plain CEL refuses ``1 - 0.5``).
  ``int / int`` is integer division, as in CEL (``7 / 2 == 3``; write
  ``7 / 2.0``); ``%`` takes ints only. ``+`` joins strings and lists;
  ``timestamp - timestamp`` is a duration; ``timestamp ± duration`` a timestamp.
* **Functions**: ``size(x)`` / ``x.size()`` (characters of a string, items of
  a list or map), ``has(field)``, ``has(map_field.key)``,
  ``s.contains(t)``, ``s.startsWith(t)``, ``s.endsWith(t)``, ``int(x)``,
  ``double(x)``, ``string(x)``, ``timestamp('2024-12-31T00:00:00Z')``,
  ``duration('36h')``, ``today()``, ``now()``. Not supported: ``matches``
  (regular expressions), list macros (``all``, ``exists``, ``map``, ``filter``),
  date parts (``getFullYear()``…).
* **Dates**: a date value is midnight UTC of that day, so date fields,
  ``today()`` and ``timestamp('…T00:00:00Z')`` compare as calendar days;
  ``today()`` is the calendar date of the ``now`` passed to ``evaluate`` in
  that ``now``'s timezone. Datetimes are instants.

Empty fields (null)
===================
Any field may be empty. ``has(x)`` is ``x != null``; ``x == null`` and
``x != null`` always work. Every other operation on an empty field (arithmetic,
``<``, ``!``, ``size``, ``in``, ``contains``, a condition) raises
:class:`ExpressionError` with code ``null_value`` naming the field, so guard it:
``has(discount) ? amount * (1 - discount / 100.0) : amount``. ``&&`` and
``||`` short-circuit either way round (CEL semantics), so
``has(close_date) && close_date < created_at`` is false, not an error, when
``close_date`` is empty. An expression may yield null (``has(x) ? x : null``),
except a ``bool`` one, which raises (``null_result``).

Limits and safety
=================
Nothing is ever handed to Python's ``eval``: the source is parsed by our own
parser, every name must be a declared field and every call a listed function,
and the interpreter receives only plain values. Expressions are at most
:data:`MAX_LENGTH` characters and :data:`MAX_DEPTH` levels deep, and may join
text or lists at most :data:`MAX_CONCATENATIONS` times; CEL has no loops or
repetition here, so evaluation time and memory grow linearly with the
expression and its values.
"""

from formloom.engine.expressions.checker import MAX_CONCATENATIONS
from formloom.engine.expressions.errors import ExpressionError, ExpressionInvalid, ExpressionIssue
from formloom.engine.expressions.runtime import CompiledExpression, compile_expression
from formloom.engine.expressions.syntax import MAX_DEPTH, MAX_LENGTH

__all__ = [
    "MAX_CONCATENATIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "CompiledExpression",
    "ExpressionError",
    "ExpressionInvalid",
    "ExpressionIssue",
    "compile_expression",
]

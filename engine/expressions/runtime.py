"""Compile an expression once (parse, type-check, hand CEL to the runtime), evaluate it often.

The runtime is the ``cel`` module of ``common-expression-language`` (a Rust
CEL interpreter). It only ever sees the CEL text written by
:mod:`.checker` and a dict of plain values (numbers, strings, booleans,
UTC datetimes, timedeltas, lists and string-keyed dicts of those, None),
plus, when a string's size is asked for, one function of ours that counts
characters. No other Python object or callable is reachable from an expression.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

from formloom.engine.expressions import types as t
from formloom.engine.expressions.checker import alias, check
from formloom.engine.expressions.errors import ExpressionError, ExpressionInvalid, ExpressionIssue
from formloom.engine.expressions.syntax import ExpressionSyntaxError, parse

#: Turns one non-null field value into the value CEL gets; raises TypeError when it does not fit.
Converter = Callable[[Any], Any]

_FUNCTION_FAILURE = re.compile(r"Function '(\w+)' error: ([^.]*)")
_MIDNIGHT_UTC = time(tzinfo=UTC)
_CONVERTIBLE = frozenset(("int", "double", "string", "timestamp", "duration"))
_EXAMPLES = {"timestamp": "timestamp('2024-12-31T00:00:00Z')", "duration": "duration('36h')"}


class CompiledExpression:
    """A checked expression, ready to evaluate against records; see :func:`compile_expression`.

    Immutable and safe to share between threads: every evaluation gets its own
    variables.
    """

    __slots__ = (
        "_bindings",
        "_cel_source",
        "_program",
        "_referenced",
        "_source",
        "_type",
        "_uses_chars",
        "_uses_now",
        "_uses_today",
    )

    def __init__(
        self,
        *,
        source: str,
        cel_source: str,
        result_type: str,
        fields: Mapping[str, str],
        referenced: frozenset[str],
        uses_now: bool,
        uses_today: bool,
        uses_chars: bool,
    ) -> None:
        self._source = source
        self._cel_source = cel_source
        self._type = result_type
        self._referenced = referenced
        self._uses_now = uses_now
        self._uses_today = uses_today
        self._uses_chars = uses_chars
        self._bindings = tuple(
            (name, alias(name), converter(fields[name]), fields[name])
            for name in sorted(referenced)
        )
        self._program = _cel().compile(cel_source)

    @property
    def source(self) -> str:
        """The expression as written."""
        return self._source

    @property
    def cel_source(self) -> str:
        """The CEL program actually run (fields renamed, conversions spelled out)."""
        return self._cel_source

    @property
    def result_type(self) -> str:
        """The CEL type of the result (the requested ``result`` when one was given)."""
        return self._type

    @property
    def referenced_fields(self) -> frozenset[str]:
        """The fields the expression reads: recompute a formula when one of them changes."""
        return self._referenced

    @property
    def uses_clock(self) -> bool:
        """Whether the expression calls ``now()`` or ``today()`` (a stored result goes stale)."""
        return self._uses_now or self._uses_today

    def __repr__(self) -> str:
        return f"CompiledExpression({self._source!r}, result_type={self._type!r})"

    def evaluate(self, values: Mapping[str, Any], *, now: datetime) -> Any:
        """Evaluate against one record's ``values`` (field name → stored Python value).

        Values may be ``int``, ``float``, ``Decimal`` (read as a double),
        ``str``, ``bool``, ``date`` (midnight UTC of that day), ``datetime``
        (naive ones are taken as UTC), ``timedelta`` or whole seconds for a
        duration, lists, string-keyed dicts (maps and JSON values), or None;
        a field missing from ``values`` is null. ``now`` (timezone-aware) is
        what ``now()`` returns; ``today()`` is midnight UTC of ``now``'s
        calendar date in ``now``'s own timezone, so pass ``now`` in the
        business's timezone.

        Returns ``int``, ``float``, ``str``, ``bool``, a UTC ``datetime``, a
        ``timedelta``, a list, or None (a ``bool`` expression never returns
        None). Raises :class:`ExpressionError` when evaluation fails.
        """
        if now.tzinfo is None:
            raise ValueError("`now` must be a timezone-aware datetime")
        variables: dict[str, Any] = {}
        for name, variable, convert, cel_type in self._bindings:
            value = values.get(name)
            if value is None:
                variables[variable] = None
                continue
            try:
                variables[variable] = convert(value)
            except TypeError:
                raise ExpressionError(
                    self._source,
                    "wrong_value_type",
                    f"field `{name}` holds {reprlib.repr(value)}, which does not fit its type "
                    f"{cel_type}",
                ) from None
        if self._uses_now:
            variables["_now"] = now.astimezone(UTC)
        if self._uses_today:
            variables["_today"] = datetime.combine(now.date(), _MIDNIGHT_UTC)
        if self._uses_chars:
            variables["_chars"] = _count_chars
        try:
            result = self._program.execute(variables)
        except Exception as exc:  # the runtime raises many types; each is explained below
            raise self._failure(exc, variables) from exc
        if result is None and self._type == "bool":
            raise ExpressionError(
                self._source, "null_result", "the expression gave null instead of true or false"
            )
        return result

    def _failure(self, exc: Exception, variables: Mapping[str, Any]) -> ExpressionError:
        """Explain a runtime failure in the user's terms."""
        text = str(exc)
        if isinstance(exc, ZeroDivisionError):
            return ExpressionError(
                self._source, "division_by_zero", text.removesuffix(" in CEL expression")
            )
        if isinstance(exc, OverflowError):
            return ExpressionError(
                self._source, "out_of_range", f"a result is out of range ({text.rstrip('.')})"
            )
        if isinstance(exc, IndexError):
            return ExpressionError(
                self._source, "index_out_of_range", f"list index out of range ({text})"
            )
        if isinstance(exc, KeyError):
            return ExpressionError(
                self._source,
                "missing_key",
                f"no key {text} in the value; test for it first, e.g. `has(address.street)`",
            )
        failed = _FUNCTION_FAILURE.match(text)
        if failed:
            function, detail = failed.groups()
            return ExpressionError(
                self._source, "invalid_argument", f"`{function}()` failed: {detail}"
            )
        empty = [name for name, variable, _, _ in self._bindings if variables[variable] is None]
        if empty:
            listed = ", ".join(f"`{name}`" for name in empty)
            subject = f"field {listed} is" if len(empty) == 1 else f"fields {listed} are"
            return ExpressionError(
                self._source,
                "null_value",
                f"{subject} empty; guard the expression, e.g. "
                f"`has({empty[0]}) ? … : …` or `has({empty[0]}) && …`",
            )
        if text.startswith("Undefined variable or function"):
            # After type checking only a JSON value of an unexpected type gets here.
            detail = "a function got a value of the wrong type"
        else:
            detail = text.split(". ")[0].rstrip(".")
        return ExpressionError(self._source, "evaluation_failed", detail)


def compile_expression(
    source: str, fields: Mapping[str, str], *, result: str | None = None
) -> CompiledExpression:
    """Parse and type-check ``source`` against ``fields`` (name → CEL type), ready to evaluate.

    ``result``, when given, is the CEL type the expression must produce (an
    ``int`` expression is accepted, and converted, where ``double`` is asked
    for). Raises :class:`ExpressionInvalid` listing every problem found, each
    with its position; raises ValueError when a CEL type in ``fields`` or
    ``result`` is not one formloom supports (a programming error).
    """
    for name, cel_type in fields.items():
        if not t.is_declarable(cel_type):
            raise ValueError(f"field `{name}` has CEL type {cel_type!r}, which is not supported")
    if result is not None and not t.is_declarable(result):
        raise ValueError(f"result type {result!r} is not supported")
    try:
        checked = check(source, parse(source), fields)
    except ExpressionSyntaxError as exc:
        raise ExpressionInvalid(
            source, [ExpressionIssue.at(source, exc.position, exc.code, exc.message)]
        ) from None
    issues = checked.issues
    result_type, cel_source = checked.type, checked.cel_source
    if not issues and result is not None:
        common = t.unify(result_type, result)
        if common != result or (result_type == t.NULL and result == "bool"):
            message = (
                f"result must be {result}, got {result_type}{_result_hint(result_type, result)}"
            )
            issues.append(ExpressionIssue.at(source, 0, "wrong_result_type", message))
        else:
            if result_type == "int" and result == "double":
                cel_source = f"double({cel_source})"
            result_type = result
    if not issues:
        issues.extend(_try_constants(source, checked.constant_calls))
    if issues:
        raise ExpressionInvalid(source, issues)
    return CompiledExpression(
        source=source,
        cel_source=cel_source,
        result_type=result_type,
        fields=fields,
        referenced=checked.referenced_fields,
        uses_now=checked.uses_now,
        uses_today=checked.uses_today,
        uses_chars=checked.uses_chars,
    )


def _result_hint(got: str, wanted: str) -> str:
    """How to turn a JSON value (``dyn``) into the wanted result type."""
    if got != t.DYN:
        return ""
    if wanted == "bool":
        return "; compare it, e.g. `… == true`"
    return f"; convert it, e.g. `{wanted}(…)`" if wanted in _CONVERTIBLE else ""


def _try_constants(source: str, calls: list[tuple[int, str]]) -> list[ExpressionIssue]:
    """Try ``timestamp('…')``/``duration('…')`` of literals now, so typos fail at design time."""
    issues = []
    for position, call in calls:
        try:
            _cel().evaluate(call)
        except Exception as exc:  # the runtime raises RuntimeError, ValueError, OverflowError…
            function = call.split("(", 1)[0]
            failed = _FUNCTION_FAILURE.match(str(exc))
            detail = failed.group(2) if failed else str(exc).split(". ")[0]
            issues.append(
                ExpressionIssue.at(
                    source,
                    position,
                    "invalid_argument",
                    f"invalid {function}: {detail}; write e.g. {_EXAMPLES[function]}",
                )
            )
    return issues


def _cel() -> ModuleType:
    """The CEL runtime, imported when the first expression is compiled: with the command-line
    tools it loads (typer, rich) it takes about 11 MiB, which a process whose entities have
    no expressions never needs."""
    import cel

    return cel


def _count_chars(value: Any) -> int | None:
    """``size()`` of a string in characters (or of a list or map in a ``dyn``), None for null.

    Must not raise: the runtime prints exceptions of Python functions.
    """
    return len(value) if isinstance(value, str | list | dict) else None


# ---- Python values → CEL values ----------------------------------------------------------
# Each converter tries the stored type first: these run for every field of every evaluation.


def _int(value: Any) -> Any:
    if type(value) is int:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise TypeError


def _double(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value
    if kind is Decimal or kind is int:
        return float(value)
    if isinstance(value, float | int | Decimal) and not isinstance(value, bool):
        return float(value)
    raise TypeError


def _string(value: Any) -> Any:
    if isinstance(value, str):
        return value
    raise TypeError


def _bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    raise TypeError


def _timestamp(value: Any) -> Any:
    # The runtime only understands fixed offsets (not zoneinfo zones), so hand it UTC.
    if isinstance(value, datetime):
        if value.tzinfo is UTC:
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, _MIDNIGHT_UTC)
    raise TypeError


def _duration(value: Any) -> Any:
    # Duration fields store whole seconds.
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return timedelta(seconds=value)
    raise TypeError


def _dyn(value: Any) -> Any:
    """Any JSON-like value: numbers, text, booleans, dates, lists, string-keyed dicts, None."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return _timestamp(value)
    if isinstance(value, timedelta):
        return value
    if isinstance(value, list | tuple):
        return [_dyn(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _dyn(item) for key, item in value.items()}
    raise TypeError


_SCALAR_CONVERTERS: dict[str, Converter] = {
    "int": _int,
    "double": _double,
    "string": _string,
    "bool": _bool,
    "timestamp": _timestamp,
    "duration": _duration,
    "dyn": _dyn,
}


def converter(cel_type: str) -> Converter:
    """The converter for values of a field of ``cel_type``."""
    element, value_type = t.element_of(cel_type), t.value_of(cel_type)
    if element is not None:
        convert_item = _SCALAR_CONVERTERS[element]

        def convert_list(value: Any) -> Any:
            if not isinstance(value, list | tuple):
                raise TypeError
            return [convert_item(item) for item in value]

        return convert_list
    if value_type is not None:
        convert_value = _SCALAR_CONVERTERS[value_type]

        def convert_map(value: Any) -> Any:
            if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
                raise TypeError
            return {k: None if v is None else convert_value(v) for k, v in value.items()}

        return convert_map
    return _SCALAR_CONVERTERS[cel_type]

"""Structured conditions: the and/or/not filters business users build in a UI.

A condition is JSON::

    {"and": [c, ...]}    {"or": [c, ...]}    {"not": c}
    {"field": "amount", "op": "ge", "value": 100000}
    {"field": "close_date", "op": "eq", "value": {"relative": "this_month"}}

:func:`parse_condition` checks one against an entity and returns a
:class:`Condition`; :func:`condition_from_params` does the same for simple
query parameters (``amount__ge=100000``). Every problem is reported at once as
an :class:`~formloom.engine.errors.Issue` with a JSON pointer. The parsed
condition decides in memory (:meth:`matches`, e.g. approval-flow branches) and
the platform compiles the same object to SQL (``formloom.platform.conditions_sql``),
with the same semantics:

- Values are normalised by the field's type (``"100000"`` fits a decimal field).
- An empty field (null; ``""`` for text; no choice for multi-choice fields) never
  equals, compares with or contains anything; ``ne`` and ``not_in`` are exactly
  ``not eq`` / ``not in``, so they include empty fields. ``not`` is plain negation.
- ``contains``/``starts_with`` on text are case-insensitive (see
  ``conditions_sql`` for the databases' case folding); on multi-choice fields
  ``contains`` means "has any of the given choices".
- Multi-lookups hold the ids of their linked records (those not in the recycle
  bin, as reads return them): ``contains`` and ``in`` mean "links to any of these
  ids", ``not_in`` "links to none of them" (so it includes records without links).
- ``between`` includes both ends; either end may be null (open).
- Structured JSON values (region, address, geo, json) can only be tested with
  ``is_empty`` so far (a value-level test needs each type to say which part of
  its value a filter compares).
- Relative dates are resolved when parsing, against the ``now`` and timezone
  given, to a period ``[start, stop)``: ``eq`` means within it, ``ne`` outside,
  ``gt`` after it, ``ge`` from its start, ``lt`` before it, ``le`` up to its end.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any, Literal, cast

from formloom.engine.entities import FieldDef
from formloom.engine.errors import DocumentInvalid, Issue, pointer
from formloom.engine.fields import FieldValueError, field_types
from formloom.engine.fields.storage import StorageKind
from formloom.engine.labels import Label
from formloom.engine.records.compiled import CompiledEntity, CompiledField
from formloom.engine.relative_dates import (
    COUNTED,
    MAX_DAYS,
    RELATIVE_NAMES,
    Period,
    resolve_period,
)

#: Operators a condition may use (each field type allows a subset, see ``FieldType.operators``).
OPERATORS = (
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "is_empty",
    "between",
)
#: Other spellings accepted for operators.
OPERATOR_ALIASES = {"gte": "ge", "lte": "le"}
#: What a parsed test does; relative dates and ``between`` become ``range``, and
#: ``contains`` on a multi-choice field becomes ``has_any``.
TestOp = Literal[
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "has_any",
    "is_empty",
    "range",
]
RELATIVE_OPERATORS = ("eq", "ne", "gt", "ge", "lt", "le", "between")
_Make = Callable[[TestOp, Any], "FieldTest"]
MAX_DEPTH = 10
MAX_TESTS = 200
MAX_VALUES = 500
MAX_TEXT = 1000
TEXT_KINDS: tuple[StorageKind, ...] = ("string", "text")
#: How a field's values are tested: ``text`` (string and text columns), ``list``
#: (JSON arrays: multi-choice, tags), ``document`` (other JSON values: region,
#: address, geo, json) or ``scalar`` (numbers, dates, booleans, references).
ValueShape = Literal["scalar", "text", "list", "document"]


def _system_field(name: str, type_name: str, zh: str, en: str) -> CompiledField:
    definition = FieldDef(name=name, label=Label(zh=zh, en=en), type=type_name)
    field_type = field_types.get(type_name)
    return CompiledField(definition, field_type, field_type.parse_options({}))


#: System columns usable in conditions and sorts, typed like user fields.
SYSTEM_FIELDS: dict[str, CompiledField] = {
    "id": _system_field("id", "integer", "编号", "ID"),
    "created_at": _system_field("created_at", "datetime", "创建时间", "Created at"),
    "updated_at": _system_field("updated_at", "datetime", "更新时间", "Updated at"),
    "created_by": _system_field("created_by", "integer", "创建人", "Created by"),
    "updated_by": _system_field("updated_by", "integer", "更新人", "Updated by"),
    "owner_id": _system_field("owner_id", "integer", "负责人", "Owner"),
}


def condition_fields(entity: CompiledEntity) -> dict[str, CompiledField]:
    """The fields a condition on ``entity`` may name: system fields, then the entity's own."""
    return {**SYSTEM_FIELDS, **entity.fields}


def storage_kind(compiled: CompiledField) -> StorageKind:
    """How the field's values are stored (decides text and date semantics)."""
    return compiled.field_type.storage(compiled.definition.options).kind


def value_shape(compiled: CompiledField) -> ValueShape:
    """The :data:`ValueShape` of a field: its storage, and for JSON its value schema."""
    kind = storage_kind(compiled)
    if kind in TEXT_KINDS:
        return "text"
    if kind == "json":
        return "list" if compiled.value_schema().get("type") == "array" else "document"
    return "scalar"


class ConditionInvalid(DocumentInvalid):
    """A condition (or a set of query-parameter filters) breaks one or more rules."""


@dataclass(frozen=True)
class Range:
    """``low <= value`` and ``value <= high`` (``value < high`` unless ``include_high``).

    Either end may be None (open).
    """

    low: Any
    high: Any
    include_high: bool = True

    def contains(self, value: Any) -> bool:
        if self.low is not None and value < self.low:
            return False
        if self.high is None:
            return True
        return bool(value <= self.high if self.include_high else value < self.high)


@dataclass(frozen=True)
class FieldTest:
    """One test on one field, with its value already normalised.

    ``value`` is a stored value for comparisons, a tuple for ``in``/``not_in``/
    ``has_any``, a string for ``contains``/``starts_with``, a bool for
    ``is_empty`` and a :class:`Range` for ``range``.
    """

    field: str
    op: TestOp
    value: Any
    kind: StorageKind
    shape: ValueShape
    compiled: CompiledField = dataclasses.field(repr=False, compare=False)

    @property
    def may_be_unknown(self) -> bool:
        """Whether the SQL form of this test is NULL (not false) for an empty field."""
        return self.op not in ("ne", "not_in", "is_empty", "has_any")

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Whether ``record`` (field name → stored or JSON value) passes this test."""
        value = _stored(record.get(self.field), self.compiled, self.kind)
        empty = _is_empty(value, self.shape)
        if self.op == "is_empty":
            return empty is self.value
        if self.op in ("ne", "not_in"):
            return empty or not _compare(self._positive(), value, self.value)
        if empty:
            return False
        return _compare(self.op, value, self.value)

    def _positive(self) -> TestOp:
        return "eq" if self.op == "ne" else "in"


def _compare(op: str, value: Any, expected: Any) -> bool:
    try:
        return bool(_COMPARISONS[op](value, expected))
    except TypeError:
        return False


_COMPARISONS: dict[str, Any] = {
    "eq": lambda v, e: v == e,
    "gt": lambda v, e: v > e,
    "ge": lambda v, e: v >= e,
    "lt": lambda v, e: v < e,
    "le": lambda v, e: v <= e,
    "in": lambda v, e: v in e,
    "contains": lambda v, e: e.lower() in v.lower(),
    "starts_with": lambda v, e: v.lower().startswith(e.lower()),
    "has_any": lambda v, e: any(choice in v for choice in e),
    "range": lambda v, e: e.contains(v),
}


@dataclass(frozen=True)
class AllOf:
    """True when every condition is (an empty group is true)."""

    conditions: tuple[Condition, ...]

    def matches(self, record: Mapping[str, Any]) -> bool:
        return all(c.matches(record) for c in self.conditions)


@dataclass(frozen=True)
class AnyOf:
    """True when at least one condition is (an empty group is false)."""

    conditions: tuple[Condition, ...]

    def matches(self, record: Mapping[str, Any]) -> bool:
        return any(c.matches(record) for c in self.conditions)


@dataclass(frozen=True)
class Not:
    """True when the condition is false."""

    condition: Condition

    def matches(self, record: Mapping[str, Any]) -> bool:
        return not self.condition.matches(record)


Condition = FieldTest | AllOf | AnyOf | Not


def parse_condition(
    raw: Any,
    entity: CompiledEntity,
    *,
    now: datetime,
    tz: tzinfo,
    at: str = "",
    lang: str = "en",
) -> Condition:
    """Check the JSON condition ``raw`` against ``entity`` and return it parsed.

    ``now`` (timezone-aware) and ``tz`` resolve relative dates; ``at`` prefixes the
    JSON pointer of every issue; messages are in Chinese when ``lang`` is ``zh``.
    Raises :class:`ConditionInvalid` listing every problem.
    """
    parser = _Parser(condition_fields(entity), entity.name, now=now, tz=tz, lang=lang)
    parsed = parser.condition(raw, at, depth=1)
    if parser.issues or parsed is None:
        raise ConditionInvalid(parser.issues)
    return parsed


def condition_from_params(
    params: Iterable[tuple[str, str]],
    entity: CompiledEntity,
    *,
    now: datetime,
    tz: tzinfo,
    at: str = "",
    lang: str = "en",
) -> Condition | None:
    """Filters given as query parameters, all of which must hold (None when there are none).

    A parameter is ``field`` (equals) or ``field__op`` with an operator of
    :data:`OPERATORS` (``gte``/``lte`` are aliases of ``ge``/``le``). Values are
    text: ``in``, ``not_in`` and multi-choice ``contains`` take comma-separated
    values, ``between`` a comma-separated pair (an empty side is open), booleans
    and ``is_empty`` accept true/false/1/0, and date fields accept relative dates
    (``this_month``, ``last_n_days:7``). Issues point at ``{at}/{parameter}``.
    """
    parser = _Parser(condition_fields(entity), entity.name, now=now, tz=tz, flat=True, lang=lang)
    tests: list[Condition] = []
    for name, text in params:
        field_name, op = _split_parameter(name)
        compiled = parser.fields.get(field_name)
        value: Any = text
        if compiled is not None and op in OPERATORS:
            value = _parameter_value(text, op, compiled)
        raw = {"field": field_name, "op": op, "value": value}
        parsed = parser.condition(raw, at + pointer(name), depth=1)
        if parsed is not None:
            tests.append(parsed)
    if parser.issues:
        raise ConditionInvalid(parser.issues)
    if not tests:
        return None
    return tests[0] if len(tests) == 1 else AllOf(tuple(tests))


# -- parsing ------------------------------------------------------------------------------------


class _Parser:
    """Walks a JSON condition, collecting every issue; ``flat`` reports all at the given path.

    Every issue has an English and a Chinese message; ``lang`` chooses (``zh`` or English).
    """

    def __init__(
        self,
        fields: dict[str, CompiledField],
        entity_name: str,
        *,
        now: datetime,
        tz: tzinfo,
        flat: bool = False,
        lang: str = "en",
    ) -> None:
        if now.tzinfo is None:
            raise ValueError("`now` must be timezone-aware")
        self.fields, self.entity_name, self.now, self.tz = fields, entity_name, now, tz
        self.flat, self.lang = flat, lang
        self.issues: list[Issue] = []
        self.tests = 0

    def path(self, at: str, *parts: str | int) -> str:
        return at if self.flat else at + pointer(*parts)

    def fail(self, at: str, code: str, en: str, zh: str) -> None:
        self.issues.append(Issue(at, code, zh if self.lang == "zh" else en))

    def field_error(self, at: str, compiled: CompiledField, exc: FieldValueError) -> None:
        """A value the field's type refused, in the parser's language."""
        name = compiled.name
        self.fail(at, exc.code, f"field `{name}`: {exc.en}", f"字段 `{name}`：{exc.zh}")

    def condition(self, raw: Any, at: str, *, depth: int) -> Condition | None:
        if depth > MAX_DEPTH:
            self.fail(
                at,
                "too_deep",
                f"conditions may be nested at most {MAX_DEPTH} levels deep",
                f"条件最多嵌套 {MAX_DEPTH} 层",
            )
            return None
        if not isinstance(raw, dict):
            self.fail(
                at,
                "invalid_condition",
                'expected a condition object: {"field": …, "op": …, "value": …} or a group '
                '{"and": […]}, {"or": […]}, {"not": {…}}',
                '应为条件对象：{"field": …, "op": …, "value": …}，或条件组 '
                '{"and": […]}、{"or": […]}、{"not": {…}}',
            )
            return None
        groups = [key for key in ("and", "or", "not") if key in raw]
        if not groups:
            return self.leaf(raw, at)
        if len(raw) > 1:
            others = ", ".join(f"`{k}`" for k in raw if k != groups[0])
            self.fail(
                at,
                "mixed_condition",
                f"the `{groups[0]}` group cannot also have {others}; wrap the parts in "
                "separate conditions inside the group",
                f"`{groups[0]}` 条件组不能同时带有 {others}；请把这些部分写成组内的独立条件",
            )
            return None
        key = groups[0]
        if key == "not":
            inner = self.condition(raw["not"], at + "/not", depth=depth + 1)
            return None if inner is None else Not(inner)
        items = raw[key]
        if not isinstance(items, list):
            self.fail(
                at + pointer(key),
                "type",
                f"`{key}` takes a list of conditions",
                f"`{key}` 的值应为条件列表",
            )
            return None
        parsed = [
            self.condition(c, at + pointer(key, i), depth=depth + 1) for i, c in enumerate(items)
        ]
        kept = tuple(c for c in parsed if c is not None)
        return AllOf(kept) if key == "and" else AnyOf(kept)

    def leaf(self, raw: dict[str, Any], at: str) -> Condition | None:
        for key in raw:
            if key not in ("field", "op", "value"):
                self.fail(
                    self.path(at, key),
                    "unexpected_key",
                    f"unexpected key `{key}`: a condition has `field`, `op` and `value`, "
                    "or is a group `and`, `or` or `not`",
                    f"不认识的键 `{key}`：条件由 `field`、`op`、`value` 组成，"
                    "或是 `and`、`or`、`not` 条件组",
                )
        self.tests += 1
        if self.tests == MAX_TESTS + 1:
            self.fail(
                at,
                "too_many_conditions",
                f"use at most {MAX_TESTS} conditions",
                f"条件最多 {MAX_TESTS} 个",
            )
        name, op = raw.get("field"), raw.get("op")
        compiled = self._field(name, self.path(at, "field"))
        op = self._operator(op, compiled, self.path(at, "op"))
        if compiled is None or op is None:
            return None
        if "value" not in raw and op != "is_empty":
            self.fail(
                self.path(at, "value"),
                "required",
                f"field `{compiled.name}`: `{op}` needs a value",
                f"字段 `{compiled.name}`：`{op}` 需要一个值（`value`）",
            )
            return None
        return self.test(compiled, op, raw.get("value", True), self.path(at, "value"))

    def _field(self, name: Any, at: str) -> CompiledField | None:
        if not isinstance(name, str) or not name:
            self.fail(
                at,
                "required",
                'name the field to test in `field`, e.g. "amount"',
                '请在 `field` 中写明要判断的字段，例如 "amount"',
            )
            return None
        compiled = self.fields.get(name)
        if compiled is None:
            close = difflib.get_close_matches(name, self.fields, n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            hint_zh = f"（是否要写 `{close[0]}`？）" if close else ""
            self.fail(
                at,
                "unknown_field",
                f"`{_shown(name)}` is not a field of `{self.entity_name}`{hint}; "
                f"fields: {', '.join(self.fields)}",
                f"`{_shown(name)}` 不是 `{self.entity_name}` 的字段{hint_zh}；"
                f"可用字段：{', '.join(self.fields)}",
            )
        return compiled

    def _operator(self, raw: Any, compiled: CompiledField | None, at: str) -> str | None:
        if not isinstance(raw, str) or not raw:
            self.fail(
                at,
                "required",
                f"name the operator in `op`, one of: {', '.join(OPERATORS)}",
                f"请在 `op` 中写明运算符，可选：{', '.join(OPERATORS)}",
            )
            return None
        op = OPERATOR_ALIASES.get(raw, raw)
        if op not in OPERATORS:
            close = difflib.get_close_matches(op, OPERATORS, n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            hint_zh = f"（是否要写 `{close[0]}`？）" if close else ""
            self.fail(
                at,
                "unknown_operator",
                f"unknown operator `{_shown(op)}`{hint}; use one of: {', '.join(OPERATORS)}",
                f"不认识的运算符 `{_shown(op)}`{hint_zh}；可选：{', '.join(OPERATORS)}",
            )
            return None
        if compiled is None:
            return op
        allowed = compiled.operators
        type_name = compiled.field_type.name
        if op not in allowed:
            listed = ", ".join(allowed)
            self.fail(
                at,
                "operator_not_allowed",
                f"field `{compiled.name}` ({type_name}) does not support `{op}`"
                + (f"; use one of: {listed}" if allowed else "; it cannot be filtered on"),
                f"字段 `{compiled.name}`（{type_name}）不支持 `{op}`"
                + (f"；可选：{listed}" if allowed else "；该字段不能用于筛选"),
            )
            return None
        if op != "is_empty" and value_shape(compiled) == "document":
            self.fail(
                at,
                "filter_not_supported",
                f"field `{compiled.name}` ({type_name}): filtering these values "
                f"by `{op}` is not supported yet; only `is_empty` is",
                f"字段 `{compiled.name}`（{type_name}）暂不支持按 `{op}` 筛选，只支持 `is_empty`",
            )
            return None
        return op

    # -- values ---------------------------------------------------------------------------------

    def test(self, compiled: CompiledField, op: str, raw: Any, at: str) -> Condition | None:
        kind, shape = storage_kind(compiled), value_shape(compiled)

        def make(test_op: TestOp, value: Any) -> FieldTest:
            return FieldTest(compiled.name, test_op, value, kind, shape, compiled)

        if op == "is_empty":
            if not isinstance(raw, bool):
                self.fail(
                    at,
                    "type",
                    f"field `{compiled.name}`: `is_empty` takes true or false",
                    f"字段 `{compiled.name}`：`is_empty` 的值应为 true 或 false",
                )
                return None
            return make("is_empty", raw)
        if op in ("in", "not_in") and shape == "list":
            # a list field (multi-lookup) is "in" a set when it holds any of its values
            has_any = self._has_any(compiled, op, raw, at, make)
            if has_any is None or op == "in":
                return has_any
            return Not(has_any)
        if op in ("in", "not_in"):
            values = self._list(compiled, op, raw, at)
            if values is None:
                return None
            scalars = [
                self._scalar(compiled, op, v, self.path(at, i)) for i, v in enumerate(values)
            ]
            if any(s is _INVALID for s in scalars):
                return None
            return make("in" if op == "in" else "not_in", tuple(dict.fromkeys(scalars)))
        if op in ("contains", "starts_with"):
            return self._text_test(compiled, op, raw, at, shape, make)
        if op == "between":
            bounds = self._range(compiled, raw, at, kind)
            return None if bounds is None else make("range", bounds)
        if _is_relative(raw):
            period = self._period(compiled, op, raw, at, kind)
            return None if period is None else _relative_test(op, period, make)
        scalar = self._scalar(compiled, op, raw, at)
        if scalar is _INVALID:
            return None
        return make(cast(TestOp, op), scalar)

    def _list(self, compiled: CompiledField, op: str, raw: Any, at: str) -> list[Any] | None:
        if not isinstance(raw, list) or not raw:
            self.fail(
                at,
                "type",
                f"field `{compiled.name}`: `{op}` takes a non-empty list of values",
                f"字段 `{compiled.name}`：`{op}` 的值应为非空列表",
            )
            return None
        if len(raw) > MAX_VALUES:
            self.fail(
                at,
                "too_many_values",
                f"`{op}` takes at most {MAX_VALUES} values",
                f"`{op}` 最多 {MAX_VALUES} 个值",
            )
            return None
        return raw

    def _scalar(self, compiled: CompiledField, op: str, raw: Any, at: str) -> Any:
        """The normalised value, or ``_INVALID`` after reporting why it is not one."""
        if raw is None or raw == "":
            self.fail(
                at,
                "empty_value",
                f"field `{compiled.name}`: `{op}` needs a value; to find records where "
                f"`{compiled.name}` is empty use the `is_empty` operator",
                f"字段 `{compiled.name}`：`{op}` 需要一个值；要查找该字段为空的记录，"
                "请使用 `is_empty` 运算符",
            )
            return _INVALID
        if _is_relative(raw):
            self.fail(
                at,
                "relative_not_allowed",
                f"field `{compiled.name}`: relative dates work with "
                f"{', '.join(RELATIVE_OPERATORS)}, not with `{op}`",
                f"字段 `{compiled.name}`：相对日期只能用于 "
                f"{', '.join(RELATIVE_OPERATORS)}，不能用于 `{op}`",
            )
            return _INVALID
        try:
            return compiled.field_type.normalise(raw, compiled.options)
        except FieldValueError as exc:
            self.field_error(at, compiled, exc)
            return _INVALID

    def _text_test(
        self, compiled: CompiledField, op: str, raw: Any, at: str, shape: ValueShape, make: _Make
    ) -> FieldTest | None:
        if shape == "list":
            return self._has_any(compiled, op, raw, at, make)
        if not isinstance(raw, str) or not raw:
            self.fail(
                at,
                "type",
                f"field `{compiled.name}`: `{op}` takes some text to look for",
                f"字段 `{compiled.name}`：`{op}` 的值应为要查找的文字",
            )
            return None
        if len(raw) > MAX_TEXT:
            self.fail(
                at,
                "too_long",
                f"field `{compiled.name}`: look for at most {MAX_TEXT} characters",
                f"字段 `{compiled.name}`：查找的文字最多 {MAX_TEXT} 个字符",
            )
            return None
        return make(cast(TestOp, op), raw)

    def _has_any(
        self, compiled: CompiledField, op: str, raw: Any, at: str, make: _Make
    ) -> FieldTest | None:
        """A list field holds any of ``raw`` (one element or a list of them)."""
        values = raw if isinstance(raw, list) else [raw]
        if self._list(compiled, op, values, at) is None:
            return None
        chosen = [
            self._choice(compiled, v, self.path(at, i) if isinstance(raw, list) else at)
            for i, v in enumerate(values)
        ]
        if any(c is _INVALID for c in chosen):
            return None
        return make("has_any", tuple(dict.fromkeys(chosen)))

    def _choice(self, compiled: CompiledField, raw: Any, at: str) -> Any:
        try:
            (chosen,) = compiled.field_type.normalise([raw], compiled.options)
        except FieldValueError as exc:
            self.field_error(at, compiled, exc)
            return _INVALID
        return chosen

    def _range(self, compiled: CompiledField, raw: Any, at: str, kind: StorageKind) -> Range | None:
        if not isinstance(raw, list) or len(raw) != 2:
            self.fail(
                at,
                "type",
                f"field `{compiled.name}`: `between` takes a pair [low, high] "
                "(either may be null for an open end)",
                f"字段 `{compiled.name}`：`between` 的值应为一对 [下限, 上限]"
                "（任一端可为 null，表示不限）",
            )
            return None
        if raw[0] is None and raw[1] is None:
            self.fail(
                at,
                "empty_value",
                f"field `{compiled.name}`: give at least one end of the range",
                f"字段 `{compiled.name}`：范围至少要给出一端",
            )
            return None
        low, high, include_high = None, None, True
        ok = True
        for i, bound in enumerate(raw):
            where = self.path(at, i)
            if bound is None:
                continue
            if _is_relative(bound):
                period = self._period(compiled, "between", bound, where, kind)
                ok = ok and period is not None
                if period is not None and i == 0:
                    low = period.start
                elif period is not None:
                    high, include_high = period.stop, False
                continue
            value = self._scalar(compiled, "between", bound, where)
            ok = ok and value is not _INVALID
            if i == 0:
                low = value
            else:
                high = value
        if not ok:
            return None
        if (
            low is not None
            and high is not None
            and (low > high or (low == high and not include_high))
        ):
            self.fail(
                at,
                "empty_range",
                f"field `{compiled.name}`: the range starts after it ends, so nothing matches; "
                "put the lower end first",
                f"字段 `{compiled.name}`：范围的下限大于上限，不会匹配任何记录；"
                "请把较小的值放在前面",
            )
            return None
        return Range(low, high, include_high)

    def _period(
        self, compiled: CompiledField, op: str, raw: dict[str, Any], at: str, kind: StorageKind
    ) -> Period | None:
        if kind not in ("date", "datetime"):
            self.fail(
                at,
                "relative_not_allowed",
                f"field `{compiled.name}` ({compiled.field_type.name}): relative dates apply to "
                "date and date-time fields only",
                f"字段 `{compiled.name}`（{compiled.field_type.name}）：相对日期只适用于"
                "日期和日期时间字段",
            )
            return None
        name, n = raw.get("relative"), raw.get("n")
        extra = [k for k in raw if k not in ("relative", "n")]
        if extra:
            self.fail(
                self.path(at, extra[0]),
                "unexpected_key",
                f"unexpected key `{extra[0]}` in a relative date; use `relative` and, for "
                f"{' and '.join(COUNTED)}, `n`",
                f"相对日期中不认识的键 `{extra[0]}`；请使用 `relative`，"
                f"{'、'.join(COUNTED)} 另需 `n`",
            )
            return None
        if name not in RELATIVE_NAMES:
            self.fail(
                self.path(at, "relative"),
                "unknown_relative_date",
                f"unknown relative date `{_shown(name)}`; use one of: {', '.join(RELATIVE_NAMES)}",
                f"不认识的相对日期 `{_shown(name)}`；可选：{', '.join(RELATIVE_NAMES)}",
            )
            return None
        if name in COUNTED and (isinstance(n, bool) or not isinstance(n, int)):
            self.fail(
                self.path(at, "n"),
                "required",
                f'`{name}` needs a whole number of days `n`, e.g. {{"relative": "{name}", "n": 7}}',
                f'`{name}` 需要整数天数 `n`，例如 {{"relative": "{name}", "n": 7}}',
            )
            return None
        if name not in COUNTED and n is not None:
            self.fail(
                self.path(at, "n"),
                "unexpected_key",
                f"`{name}` takes no day count `n`",
                f"`{name}` 不需要天数 `n`",
            )
            return None
        try:
            return resolve_period(name, n, now=self.now, tz=self.tz, instants=kind == "datetime")
        except ValueError as exc:
            self.fail(
                self.path(at, "n"),
                "out_of_range",
                f"field `{compiled.name}`: {exc}",
                f"字段 `{compiled.name}`：`{name}` 的天数 `n` 应在 1 到 {MAX_DAYS} 之间",
            )
            return None


def _relative_test(op: str, period: Period, make: _Make) -> Condition:
    """A comparison with a period, as tests on its start and stop."""
    within = make("range", Range(period.start, period.stop, include_high=False))
    lowered: dict[str, Condition] = {
        "eq": within,
        "ne": Not(within),
        "gt": make("ge", period.stop),
        "ge": make("ge", period.start),
        "lt": make("lt", period.start),
        "le": make("lt", period.stop),
    }
    return lowered[op]


class _Invalid:
    """Marks a value that could not be parsed (its issue is already reported)."""


_INVALID: Any = _Invalid()


def _is_relative(raw: Any) -> bool:
    return isinstance(raw, dict) and "relative" in raw


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- query parameters ---------------------------------------------------------------------------


def _split_parameter(name: str) -> tuple[str, str]:
    """``amount__ge`` → (``amount``, ``ge``); a name without a known operator suffix means eq."""
    base, sep, suffix = name.rpartition("__")
    if sep and base and (suffix in OPERATORS or suffix in OPERATOR_ALIASES):
        return base, OPERATOR_ALIASES.get(suffix, suffix)
    return name, "eq"


def _parameter_value(text: str, op: str, compiled: CompiledField) -> Any:
    """The JSON value a query-parameter text stands for (the parser checks it)."""
    kind = storage_kind(compiled)
    if op == "is_empty":
        return True if not text.strip() else _flag(text)
    if op in ("in", "not_in") or (op == "contains" and value_shape(compiled) == "list"):
        return [_parameter_scalar(part, compiled, kind) for part in _comma_list(text)]
    if op == "between":
        parts = text.split(",")
        if len(parts) != 2:
            return text
        return [
            None if not p.strip() else _parameter_scalar(p.strip(), compiled, kind) for p in parts
        ]
    if op in ("contains", "starts_with"):
        return text
    return _parameter_scalar(text, compiled, kind)


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parameter_scalar(text: str, compiled: CompiledField, kind: StorageKind) -> Any:
    if kind == "boolean":
        return _flag(text)
    if kind in ("date", "datetime"):
        name, _, count = text.partition(":")
        if name in RELATIVE_NAMES:
            relative: dict[str, Any] = {"relative": name}
            if count:
                relative["n"] = int(count) if count.strip().isdigit() else count
            return relative
    return text


def _flag(text: str) -> bool | str:
    """true/1 and false/0 (any case) as booleans; other text stays for the parser to refuse."""
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    return text


# -- evaluation ---------------------------------------------------------------------------------

_PYTHON_TYPES: dict[StorageKind, type | tuple[type, ...]] = {
    "string": str,
    "text": str,
    "integer": int,
    "decimal": Decimal,
    "boolean": bool,
    "date": date,
    "datetime": datetime,
    "json": (list, dict),
}


def _stored(value: Any, compiled: CompiledField, kind: StorageKind) -> Any:
    """A record value as the database holds it: JSON forms go through the field type.

    A value the type cannot read stays as it is; it then compares with nothing.
    """
    if value is None:
        return None
    if kind == "datetime" and isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if kind == "date" and isinstance(value, datetime):
        return value.date()
    if kind == "decimal" and isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    if isinstance(value, _PYTHON_TYPES[kind]):
        return value
    try:
        return compiled.field_type.normalise(value, compiled.options)
    except FieldValueError:
        return value


def _is_empty(value: Any, shape: ValueShape) -> bool:
    if value is None:
        return True
    if shape == "text":
        return bool(value == "")
    if shape == "list":
        return not isinstance(value, list) or not value
    return False

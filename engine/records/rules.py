"""An entity's record rules: formulas, conditional required fields, validation rules, duplicates.

:func:`compile_rules` builds them from an entity document and raises
:class:`~formloom.engine.errors.DocumentInvalid` listing every problem (the
entity kind calls it when the document is published, so the object that was
checked is the object that runs). The pure functions below then carry out one
save, in the order the records service runs them (DESIGN.md §5):

1. :func:`compute_formulas`: every formula from the record's new values, in
   dependency order (a formula may use another). Formulas run *before* the
   rules, so a rule can test a formula's value (Salesforce evaluates formula
   fields when they are read, with the same effect).
2. :func:`required_when_issues`: fields whose ``required_when`` condition
   matches the new values must not be empty.
3. :func:`validation_issues`: each validation rule whose ``when`` is true
   blocks the save with its message. A rule that cannot be evaluated (an empty
   field in arithmetic…) does not block: guard it with ``has(field)`` when an
   empty field should.
4. Duplicate rules compare :func:`duplicate_key` values; the platform queries.

A formula that cannot be evaluated for a record stores an empty value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from formloom.engine.conditions import parse_condition
from formloom.engine.errors import Issue, pointer
from formloom.engine.expressions import ExpressionError
from formloom.engine.fields import FieldValueError
from formloom.engine.fields.computed import FORMULA_TEXT_LENGTH, FormulaOptions
from formloom.engine.fields.values import decimal as checked_decimal
from formloom.engine.records.compiled import CompiledEntity
from formloom.engine.records.rule_compiler import (
    BUSINESS_TZ,
    SYSTEM_CEL_TYPES,
    CheckedRule,
    ConditionalRequired,
    EntityRules,
    Formula,
    compile_rules,
    field_cel_type,
    has_relative_date,
    rollup_empty_value,
)

__all__ = [
    "BUSINESS_TZ",
    "SYSTEM_CEL_TYPES",
    "CheckedRule",
    "ConditionalRequired",
    "EntityRules",
    "Formula",
    "compile_rules",
    "compute_formulas",
    "duplicate_key",
    "field_cel_type",
    "fold",
    "formula_value",
    "has_relative_date",
    "required_when_issues",
    "rollup_empty_value",
    "validation_issues",
]


# -- one save -----------------------------------------------------------------------------------


def compute_formulas(
    rules: EntityRules, values: Mapping[str, Any], *, now: datetime
) -> dict[str, Any]:
    """Every formula's stored value for a record with ``values`` (stored values by field)."""
    scope = dict(values)
    computed: dict[str, Any] = {}
    for formula in rules.formulas:
        try:
            result = formula.expression.evaluate(scope, now=now)
        except ExpressionError:
            value = None
        else:
            value = formula_value(formula.options, result)
        scope[formula.name] = computed[formula.name] = value
    return computed


def formula_value(options: FormulaOptions, result: Any) -> Any:
    """A formula's evaluation result as the value its column stores (None if it does not fit)."""
    if result is None:
        return None
    kind = options.result
    if kind == "text":
        return result if isinstance(result, str) and len(result) <= FORMULA_TEXT_LENGTH else None
    if kind == "boolean":
        return result if isinstance(result, bool) else None
    if kind == "integer":
        ok = isinstance(result, int) and not isinstance(result, bool)
        return result if ok and -(2**63) <= result < 2**63 else None
    if kind == "decimal":
        return _decimal(result, options.precision, options.scale)
    if not isinstance(result, datetime):
        return None
    moment = result.astimezone(UTC) if result.tzinfo else result.replace(tzinfo=UTC)
    return moment.date() if kind == "date" else moment


def _decimal(result: Any, precision: int, scale: int) -> Decimal | None:
    if isinstance(result, bool) or not isinstance(result, int | float):
        return None
    try:
        number = Decimal(repr(result)).quantize(Decimal(1).scaleb(-scale), ROUND_HALF_UP)
        return checked_decimal(number, precision=precision, scale=scale)
    except (InvalidOperation, FieldValueError):
        return None


def required_when_issues(
    rules: EntityRules,
    entity: CompiledEntity,
    values: Mapping[str, Any],
    *,
    now: datetime,
    tz: tzinfo = BUSINESS_TZ,
    lang: str = "en",
    at: str = "",
    flagged: Iterable[str] = (),
) -> list[Issue]:
    """Issues for fields whose ``required_when`` matches ``values`` but that are empty.

    ``flagged`` holds paths that already have an issue (not reported twice).
    """
    skip = set(flagged)
    issues = []
    for conditional in rules.conditional:
        path = at + pointer(conditional.field)
        compiled = entity.fields[conditional.field]
        if path in skip or not compiled.field_type.is_empty(values.get(conditional.field)):
            continue
        condition = conditional.parsed or parse_condition(conditional.raw, entity, now=now, tz=tz)
        if condition.matches(values):
            label = compiled.label(lang)
            message = (
                f"{label}为必填项（符合该字段的必填条件）"
                if lang == "zh"
                else f"{label} is required for this record (its condition for being required "
                "applies)"
            )
            issues.append(Issue(path, "required", message))
    return issues


def validation_issues(
    rules: EntityRules,
    values: Mapping[str, Any],
    *,
    now: datetime,
    lang: str = "en",
    at: str = "",
) -> list[Issue]:
    """One issue per validation rule whose ``when`` is true for ``values``."""
    issues = []
    for checked in rules.validations:
        try:
            fired = checked.expression.evaluate(values, now=now) is True
        except ExpressionError:
            fired = False
        if fired:
            rule = checked.rule
            path = at + pointer(rule.field) if rule.field else at
            message = rule.message.zh if lang == "zh" else rule.message.en
            issues.append(Issue(path, "validation_rule", message))
    return issues


def fold(text: str) -> str:
    """Text as normalised duplicate matching compares it: trimmed, spaces collapsed, case-folded."""
    return " ".join(text.split()).casefold()


def duplicate_key(value: Any, *, normalised: bool) -> Any:
    """What a duplicate rule compares for a stored ``value``; None means "no value, no match".

    Phone numbers and emails are stored normalised already (E.164, lower-case
    domain); normalised matching folds every text.
    """
    if value is None or value == "":
        return None
    if normalised and isinstance(value, str):
        return fold(value)
    return value

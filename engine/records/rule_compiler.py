"""Compile an entity's record rules from its document, reporting every problem.

See :mod:`formloom.engine.records.rules` for what the rules do on a save;
this module builds them (:func:`compile_rules`) and is what the entity kind
runs when a document is published.
"""

from __future__ import annotations

import difflib
import graphlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from formloom.engine.conditions import Condition, ConditionInvalid, parse_condition
from formloom.engine.entities.model import DuplicateRule, EntityDoc, FieldDef, ValidationRule
from formloom.engine.errors import DocumentInvalid, Issue, pointer
from formloom.engine.expressions import CompiledExpression, ExpressionInvalid, compile_expression
from formloom.engine.fields import field_types
from formloom.engine.fields.computed import (
    FORMULA_CEL_TYPES,
    AutoNumberOptions,
    ComputedFieldType,
    FormulaOptions,
    RollupOptions,
)
from formloom.engine.records.compiled import compile_entity
from formloom.engine.relative_dates import DEFAULT_TIMEZONE, timezone_named

#: System fields that validation rules may use, with their CEL types.
SYSTEM_CEL_TYPES = {
    "id": "int",
    "created_at": "timestamp",
    "updated_at": "timestamp",
    "owner_id": "int",
}
#: What formulas may not use: the id does not exist yet when a new record's formulas run.
_NOT_IN_FORMULAS = ("id",)
BUSINESS_TZ = timezone_named(DEFAULT_TIMEZONE) or UTC


@dataclass(frozen=True)
class Formula:
    """A formula field, its checked expression and its options."""

    name: str
    expression: CompiledExpression
    options: FormulaOptions


@dataclass(frozen=True)
class CheckedRule:
    """A validation rule with its compiled ``when``."""

    rule: ValidationRule
    expression: CompiledExpression


@dataclass(frozen=True)
class ConditionalRequired:
    """A field's ``required_when``; ``parsed`` is None with relative dates (parsed per save)."""

    field: str
    raw: dict[str, Any]
    parsed: Condition | None


@dataclass(frozen=True)
class EntityRules:
    """Everything that runs on a save of one entity version besides the field checks."""

    formulas: tuple[Formula, ...] = ()
    validations: tuple[CheckedRule, ...] = ()
    conditional: tuple[ConditionalRequired, ...] = ()
    duplicates: tuple[DuplicateRule, ...] = ()
    auto_numbers: tuple[tuple[str, AutoNumberOptions], ...] = ()
    #: The rollups' values for a new record (it has no related records yet).
    rollup_start: tuple[tuple[str, Any], ...] = ()
    computed: frozenset[str] = frozenset()

    def formulas_using(self, names: Iterable[str]) -> tuple[Formula, ...]:
        """The formulas whose value depends, directly or through other formulas, on ``names``."""
        touched = set(names)
        found = []
        for formula in self.formulas:  # dependency order: a formula follows what it uses
            if formula.expression.referenced_fields & touched:
                touched.add(formula.name)
                found.append(formula)
        return tuple(found)


def field_cel_type(field_def: FieldDef) -> str:
    """The CEL type of a field's values (a computed field's type depends on its options)."""
    field_type = field_types.get(field_def.type)
    if isinstance(field_type, ComputedFieldType):
        return field_type.cel_type_of(field_type.parse_options(field_def.options))
    return field_type.cel_type


def compile_rules(document: EntityDoc, *, broken: Iterable[str] = ()) -> EntityRules:
    """Check and compile the rules of ``document``; raises DocumentInvalid with every problem.

    ``broken`` names fields that already have problems of their own (unknown
    type, bad options): rules may name them without further complaints, and
    nothing is compiled for them.
    """
    return _Compiler(document, set(broken)).run()


class _Compiler:
    def __init__(self, document: EntityDoc, broken: set[str]) -> None:
        self.document, self.broken = document, broken
        self.issues: list[Issue] = []
        self.cel_types = dict(SYSTEM_CEL_TYPES)
        for f in document.fields:
            self.cel_types[f.name] = "dyn" if f.name in broken else field_cel_type(f)
        sound = [f for f in document.fields if f.name not in broken]
        self.entity = compile_entity(document.model_copy(update={"fields": sound}))
        self.now = datetime.now(UTC)

    def run(self) -> EntityRules:
        computed, conditional, auto_numbers, rollup_start = set(), [], [], []
        formulas: dict[str, tuple[int, Formula]] = {}
        for i, f in enumerate(self.document.fields):
            if f.name in self.broken:
                continue
            at = pointer("fields", i)
            field_type = field_types.get(f.type)
            if isinstance(field_type, ComputedFieldType):
                computed.add(f.name)
                self._computed_flags(f, at)
                options = field_type.parse_options(f.options)
                if isinstance(options, FormulaOptions):
                    formula = self._formula(f.name, options, at)
                    if formula is not None:
                        formulas[f.name] = (i, formula)
                elif isinstance(options, AutoNumberOptions):
                    auto_numbers.append((f.name, options))
                elif isinstance(options, RollupOptions):
                    rollup_start.append((f.name, rollup_empty_value(options)))
            elif f.required_when is not None:
                found = self._required_when(f, at)
                if found is not None:
                    conditional.append(found)
        ordered = self._in_dependency_order(formulas)
        validations = self._validation_rules()
        self._duplicate_rules()
        if self.issues:
            raise DocumentInvalid(self.issues)
        return EntityRules(
            formulas=ordered,
            validations=validations,
            conditional=tuple(conditional),
            duplicates=tuple(self.document.duplicate_rules),
            auto_numbers=tuple(auto_numbers),
            rollup_start=tuple(rollup_start),
            computed=frozenset(computed),
        )

    def fail(self, path: str, code: str, message: str) -> None:
        self.issues.append(Issue(path, code, message))

    # -- fields ---------------------------------------------------------------------------------

    def _computed_flags(self, f: FieldDef, at: str) -> None:
        what = f"field `{f.name}` ({f.type}) is computed by the platform"
        if f.required:
            self.fail(at + "/required", "computed_field", f"{what}; remove `required`")
        if f.default is not None:
            self.fail(at + "/default", "computed_field", f"{what}; remove `default`")
        if f.required_when is not None:
            self.fail(at + "/required_when", "computed_field", f"{what}; remove `required_when`")
        if f.type == "auto_number" and not f.unique:
            self.fail(
                at + "/unique",
                "auto_number_not_unique",
                f"auto-number field `{f.name}` must be unique: set `unique: true` (the unique "
                "index guarantees that no number is ever given twice)",
            )

    def _required_when(self, f: FieldDef, at: str) -> ConditionalRequired | None:
        assert f.required_when is not None
        if f.required:
            self.fail(
                at + "/required_when",
                "redundant_condition",
                f"field `{f.name}` is always required (`required: true`); remove `required` or "
                "`required_when`",
            )
            return None
        try:
            parsed = parse_condition(
                f.required_when, self.entity, now=self.now, tz=BUSINESS_TZ, at=at + "/required_when"
            )
        except ConditionInvalid as exc:
            self.issues += exc.issues
            return None
        relative = has_relative_date(f.required_when)
        return ConditionalRequired(f.name, f.required_when, None if relative else parsed)

    def _formula(self, name: str, options: FormulaOptions, at: str) -> Formula | None:
        where = at + "/options/expression"
        try:
            expression = compile_expression(
                options.expression,
                self.cel_types,
                result=FORMULA_CEL_TYPES[options.result],
            )
        except ExpressionInvalid as exc:
            self.issues += [
                _named(issue.to_issue(where), f"formula `{name}`") for issue in exc.issues
            ]
            return None
        for used in sorted(expression.referenced_fields):
            if used in _NOT_IN_FORMULAS or self._is_type(used, "auto_number"):
                self.fail(
                    where,
                    "not_available",
                    f"formula `{name}` uses `{used}`, which is assigned only when a new record is "
                    "written, after formulas are computed; leave it out of the formula",
                )
        if expression.uses_clock:
            self.fail(
                where,
                "uses_clock",
                f"formula `{name}` calls now() or today(): a formula is stored when the record is "
                "saved, so its value would go stale; compare with the clock in a validation rule "
                "or in a list filter (relative dates) instead",
            )
        return Formula(name, expression, options)

    def _is_type(self, name: str, type_name: str) -> bool:
        found = self.document.field(name)
        return found is not None and found.type == type_name

    def _in_dependency_order(self, formulas: dict[str, tuple[int, Formula]]) -> tuple[Formula, ...]:
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for name, (_, formula) in formulas.items():
            sorter.add(name, *(f for f in formula.expression.referenced_fields if f in formulas))
        try:
            order = list(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle: list[str] = list(reversed(exc.args[1]))
            index = formulas[cycle[0]][0]
            shown = " → ".join(f"`{n}`" for n in cycle)
            self.fail(
                pointer("fields", index, "options", "expression"),
                "formula_cycle",
                f"formulas refer to each other in a circle: {shown}; a formula cannot depend on "
                "itself, so break the circle in one of them",
            )
            return ()
        return tuple(formulas[name][1] for name in order)

    # -- validation and duplicate rules ---------------------------------------------------------

    def _validation_rules(self) -> tuple[CheckedRule, ...]:
        checked = []
        seen: set[str] = set()
        for i, rule in enumerate(self.document.validation_rules):
            at = pointer("validation_rules", i)
            if rule.name in seen:
                self.fail(at + "/name", "duplicate_rule", f"rule `{rule.name}` is defined twice")
            seen.add(rule.name)
            if rule.field is not None and rule.field not in self.cel_types:
                self.fail(at + "/field", "unknown_field", self._unknown(rule.field))
            try:
                expression = compile_expression(rule.when, self.cel_types, result="bool")
            except ExpressionInvalid as exc:
                self.issues += [
                    _named(issue.to_issue(at + "/when"), f"validation rule `{rule.name}`")
                    for issue in exc.issues
                ]
                continue
            checked.append(CheckedRule(rule, expression))
        return tuple(checked)

    def _duplicate_rules(self) -> None:
        seen: set[str] = set()
        for i, rule in enumerate(self.document.duplicate_rules):
            at = pointer("duplicate_rules", i)
            if rule.name in seen:
                self.fail(at + "/name", "duplicate_rule", f"rule `{rule.name}` is defined twice")
            seen.add(rule.name)
            for j, name in enumerate(rule.fields):
                where = at + pointer("fields", j)
                found = self.entity.fields.get(name)
                if name in rule.fields[:j]:
                    self.fail(where, "repeated_field", f"field `{name}` is listed twice")
                elif found is None:
                    if name not in self.broken:
                        self.fail(where, "unknown_field", self._unknown(name))
                elif found.field_type.storage(found.definition.options).kind in ("text", "json"):
                    self.fail(
                        where,
                        "not_comparable",
                        f"duplicate rule `{rule.name}`: field `{name}` ({found.field_type.name}) "
                        "holds long text or structured values, which are not compared; use "
                        "short fields such as names, emails, phone numbers or codes",
                    )

    def _unknown(self, name: str) -> str:
        names = [f.name for f in self.document.fields]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        return f"`{name}` is not a field of `{self.document.name}`{hint}"


def _named(issue: Issue, what: str) -> Issue:
    return Issue(issue.path, issue.code, f"{what}: {issue.message}")


def has_relative_date(raw: Any) -> bool:
    """Whether a raw condition uses a relative date (``{"relative": …}``) anywhere."""
    if isinstance(raw, dict):
        return "relative" in raw or any(has_relative_date(v) for v in raw.values())
    if isinstance(raw, list):
        return any(has_relative_date(v) for v in raw)
    return False


def rollup_empty_value(options: RollupOptions) -> Any:
    """A rollup's value when no related record matches: 0 for count and sum, else empty."""
    if options.aggregate == "count":
        return 0
    if options.aggregate == "sum":
        return Decimal(0).quantize(Decimal(1).scaleb(-options.scale))
    return None

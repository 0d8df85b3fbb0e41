"""Rollup fields checked against the entity whose records they summarise.

A rollup on a parent entity (``account.open_amount``) summarises the records of
a child entity (``deal``) that look the parent up (``deal.account``). Both sides
are checked when published: :func:`rollup_issues` checks a parent's rollups
against the child entities, :func:`dependent_rollup_issues` checks that a new
version of a child entity still has what other entities' rollups use.

What a rollup may aggregate: numbers (``sum``, ``avg``, ``min``, ``max``),
dates and date-times (``min``, ``max``), anything (``count`` counts the records,
or the non-empty values of ``field``). Not a rollup, nor a formula that uses one:
a child's rollup changes when *its* children change, and chains of rollups are
not kept up to date (Salesforce has the same rule). Conditions may not use
relative dates (``this_month``): a stored total would go stale as time passes.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from formloom.engine.conditions import (
    Condition,
    ConditionInvalid,
    FieldTest,
    Not,
    parse_condition,
)
from formloom.engine.entities.model import EntityDoc, FieldDef
from formloom.engine.errors import DocumentInvalid, Issue, RegistryError, pointer
from formloom.engine.fields import field_types
from formloom.engine.fields.computed import RollupOptions
from formloom.engine.records.compiled import CompiledEntity, compile_entity
from formloom.engine.records.rules import BUSINESS_TZ, compile_rules, has_relative_date

_NUMERIC = ("integer", "decimal")


@dataclass(frozen=True)
class RollupSpec:
    """Field ``field`` of ``parent`` summarises ``child`` records through ``child.lookup``."""

    parent: str
    field: str
    child: str
    lookup: str
    options: RollupOptions


def rollup_specs(document: EntityDoc) -> list[tuple[int, RollupSpec]]:
    """The rollup fields of ``document`` (with their positions) whose options parse."""
    specs = []
    for i, f in enumerate(document.fields):
        if f.type != "rollup":
            continue
        try:
            options = RollupOptions.model_validate(f.options)
        except ValidationError:
            continue
        relation = options.relation
        specs.append(
            (i, RollupSpec(document.name, f.name, relation.entity, relation.field, options))
        )
    return specs


def rollup_issues(document: EntityDoc, others: Mapping[str, EntityDoc]) -> list[Issue]:
    """Problems of ``document``'s rollups; ``others`` holds the environment's other entities."""
    issues = []
    for i, spec in rollup_specs(document):
        issues += _spec_issues(spec, others, at=pointer("fields", i, "options"))
    return issues


def dependent_rollup_issues(document: EntityDoc, others: Mapping[str, EntityDoc]) -> list[Issue]:
    """Rollups of other entities over ``document`` that this version of it would break."""
    issues = []
    world = {**others, document.name: document}
    for name, other in sorted(others.items()):
        if name == document.name:
            continue
        for _, spec in rollup_specs(other):
            if spec.child != document.name:
                continue
            for issue in _spec_issues(spec, world, at=""):
                issues.append(
                    Issue(
                        "",
                        "rollup_broken",
                        f"rollup `{name}.{spec.field}` summarises `{document.name}` records: "
                        f"{issue.message}; change or remove that rollup first",
                    )
                )
    return issues


def _spec_issues(spec: RollupSpec, world: Mapping[str, EntityDoc], *, at: str) -> list[Issue]:
    relation = at + "/relation"
    if spec.child == spec.parent:
        return [
            Issue(
                relation + "/entity",
                "same_entity",
                f"rollup `{spec.field}` must summarise another entity's records, not `{spec.child}`"
                " itself",
            )
        ]
    child = world.get(spec.child)
    if child is None:
        return [
            Issue(
                relation + "/entity",
                "unknown_entity",
                f"rollup `{spec.field}`: entity `{spec.child}` does not exist"
                f"{_hint(spec.child, [n for n in world if n != spec.parent])}; publish it first",
            )
        ]
    issues = _relation_issues(spec, child, relation)
    if spec.options.field is not None:
        issues += _field_issues(spec, child, at + "/field")
    if spec.options.condition is not None:
        issues += _condition_issues(spec, child, at + "/condition")
    return issues


def _relation_issues(spec: RollupSpec, child: EntityDoc, at: str) -> list[Issue]:
    lookup = child.field(spec.lookup)
    if (
        lookup is not None
        and lookup.type == "lookup"
        and lookup.options.get("entity") == spec.parent
    ):
        return []
    candidates = [
        f.name
        for f in child.fields
        if f.type == "lookup" and f.options.get("entity") == spec.parent
    ]
    listed = ", ".join(f"`{n}`" for n in candidates) or "none yet: add one to it"
    what = "is not a field of" if lookup is None else "is not a lookup to this entity in"
    return [
        Issue(
            at + "/field",
            "not_a_relation",
            f"rollup `{spec.field}`: `{spec.lookup}` {what} `{spec.child}`"
            f"{_hint(spec.lookup, candidates)}; its lookups to `{spec.parent}`: {listed}",
        )
    ]


def _field_issues(spec: RollupSpec, child: EntityDoc, at: str) -> list[Issue]:
    name = spec.options.field
    assert name is not None
    found = child.field(name)
    if found is None or found.type not in field_types:
        known = [f.name for f in child.fields]
        return [
            Issue(
                at,
                "unknown_field",
                f"rollup `{spec.field}`: `{name}` is not a field of `{spec.child}`"
                f"{_hint(name, known)}",
            )
        ]
    problem = _aggregate_problem(spec, found) or _computed_problem(child, found)
    return [Issue(at, "cannot_aggregate", f"rollup `{spec.field}`: {problem}")] if problem else []


def _aggregate_problem(spec: RollupSpec, found: FieldDef) -> str | None:
    options = spec.options
    if options.aggregate == "count":
        return None
    try:
        kind = field_types.get(found.type).storage(found.options).kind
    except (ValidationError, RegistryError):
        return None  # the child's own checks report its options
    shown = f"`{spec.child}.{found.name}` ({found.type})"
    if options.aggregate in ("sum", "avg") and kind not in _NUMERIC:
        return f"`{options.aggregate}` needs a number field; {shown} is not one"
    if options.aggregate in ("min", "max"):
        wanted = "number" if kind in _NUMERIC else kind if kind in ("date", "datetime") else None
        if wanted is None:
            return f"`{options.aggregate}` needs a number, date or date-time field; {shown} is not"
        if wanted != options.result:
            return (
                f"{shown} holds {'numbers' if wanted == 'number' else wanted + 's'}: set "
                f'`"result": "{wanted}"`'
            )
    return None


def _computed_problem(child: EntityDoc, found: FieldDef) -> str | None:
    if found.type == "rollup":
        return f"`{child.name}.{found.name}` is itself a rollup; rollups of rollups are not kept"
    if found.type != "formula":
        return None
    try:
        rules = compile_rules(child)
    except (DocumentInvalid, ValidationError, RegistryError):
        return None  # the child's own checks report its problems
    rollups = {f.name for f in child.fields if f.type == "rollup"}
    if found.name in {f.name for f in rules.formulas_using(rollups)}:
        return (
            f"formula `{child.name}.{found.name}` uses a rollup of `{child.name}`; rollups of "
            "rollups are not kept up to date"
        )
    return None


def _condition_issues(spec: RollupSpec, child: EntityDoc, at: str) -> list[Issue]:
    raw = spec.options.condition
    if has_relative_date(raw):
        return [
            Issue(
                at,
                "relative_not_allowed",
                f"rollup `{spec.field}`: the condition uses a relative date; a stored total would "
                "go stale as days pass; use fixed dates",
            )
        ]
    entity = _compiled(child)
    if entity is None:
        return []
    try:
        parsed = parse_condition(raw, entity, now=datetime.now(UTC), tz=BUSINESS_TZ, at=at)
    except ConditionInvalid as exc:
        return [
            Issue(i.path, i.code, f"rollup `{spec.field}` on `{spec.child}`: {i.message}")
            for i in exc.issues
        ]
    links = sorted(
        name
        for name in tested_fields(parsed)
        if name in entity.fields
        and entity.fields[name].field_type.junction_target(entity.fields[name].definition.options)
    )
    return [
        Issue(
            at,
            "multi_lookup_not_allowed",
            f"rollup `{spec.field}`: the condition tests multi-lookup `{name}`, whose links "
            "change when their targets are deleted or restored, which does not recompute the "
            "stored total; test other fields",
        )
        for name in links
    ]


def tested_fields(condition: Condition) -> set[str]:
    """The fields a parsed condition tests."""
    if isinstance(condition, FieldTest):
        return {condition.field}
    if isinstance(condition, Not):
        return tested_fields(condition.condition)
    found: set[str] = set()
    for part in condition.conditions:
        found |= tested_fields(part)
    return found


def _compiled(document: EntityDoc) -> CompiledEntity | None:
    try:
        return compile_entity(document)
    except (ValidationError, RegistryError):
        return None


def _hint(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""

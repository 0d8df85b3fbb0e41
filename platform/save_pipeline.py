"""The save pipeline's steps after the payload checks, for one record (DESIGN.md §5).

:class:`RecordWriter` checks the payload (normalise, types, required), then
hands the record's new values to :func:`run_rules`:

1. formulas, computed from the new values (rules may test them);
2. conditional required fields (``required_when``);
3. validation rules (each true ``when`` is an issue with its zh/en message);
4. duplicate rules (``block``: an issue; ``warn``: kept for later).

Its issues join the payload's and the database checks' (lookups, unique
values), so a request gets every problem at once. Only when there are none
does the writer raise the duplicate warning (409 unless confirmed), then take
auto-numbers (:func:`assign_auto_numbers`) and write. Everything happens in the
request's transaction: a failure anywhere writes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from formloom.engine.errors import Issue
from formloom.engine.records.rules import (
    BUSINESS_TZ,
    EntityRules,
    compile_rules,
    compute_formulas,
    required_when_issues,
    validation_issues,
)
from formloom.platform.counters import assign_auto_number
from formloom.platform.entity_runtime import RuntimeEntity
from formloom.platform.record_context import WriteContext
from formloom.platform.record_duplicates import DuplicateMatch, duplicate_issues, find_duplicates

CACHE_LIMIT = 2048
_cache: dict[tuple[str, str, str, int], EntityRules] = {}
_lock = threading.Lock()


def rules_for(ctx: WriteContext, entity: RuntimeEntity) -> EntityRules:
    """The compiled rules of this version of the entity (compiled once per version)."""
    key = (ctx.cache_key, ctx.env, entity.name, entity.version)
    found = _cache.get(key)
    if found is None:
        found = compile_rules(entity.document)
        with _lock:
            if len(_cache) >= CACHE_LIMIT:
                _cache.clear()
            _cache[key] = found
    return found


def rules_computed(ctx: WriteContext, entity: RuntimeEntity) -> frozenset[str]:
    """The entity's computed fields (formulas, auto-numbers, rollups): never written by clients."""
    return rules_for(ctx, entity).computed


@dataclass
class RuleOutcome:
    """What the rules made of one record: computed values, issues and duplicate warnings.

    ``formulas`` holds the values to store for the computed fields: every
    formula, and on create the rollups' starting values (0 for count and sum).
    """

    formulas: dict[str, Any] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    warnings: list[DuplicateMatch] = field(default_factory=list)


def run_rules(
    ctx: WriteContext,
    entity: RuntimeEntity,
    record: Mapping[str, Any],
    *,
    changed: set[str] | None,
    flagged: set[str],
    at: str,
) -> RuleOutcome:
    """Run steps 1-4 on ``record``: the stored values after the write, system fields included.

    ``changed`` names the fields an update changes (None on create: every rule
    applies); ``flagged`` holds paths that already have an issue.
    """
    rules = rules_for(ctx, entity)
    outcome = RuleOutcome()
    values = dict(record)
    if changed is None and rules.rollup_start:
        outcome.formulas.update(rules.rollup_start)
        values.update(rules.rollup_start)
    if rules.formulas:
        formulas = compute_formulas(rules, values, now=ctx.now)
        outcome.formulas.update(formulas)
        values.update(formulas)
    if rules.conditional:
        outcome.issues += required_when_issues(
            rules,
            entity.compiled,
            values,
            now=ctx.now,
            tz=BUSINESS_TZ,
            lang=ctx.lang,
            at=at,
            flagged=flagged,
        )
    if rules.validations:
        now = ctx.now.astimezone(BUSINESS_TZ)
        outcome.issues += validation_issues(rules, values, now=now, lang=ctx.lang, at=at)
    if rules.duplicates:
        if changed is not None:
            changed = changed | {k for k, v in outcome.formulas.items() if record.get(k) != v}
        matches = find_duplicates(
            ctx.conn,
            entity,
            rules.duplicates,
            values,
            changed=changed,
            record_id=record.get("id"),
            access=ctx.reader(),
        )
        blocking = [m for m in matches if m.rule.action == "block"]
        outcome.issues += duplicate_issues(entity, blocking, at=at, lang=ctx.lang)
        outcome.warnings = [m for m in matches if m.rule.action == "warn"]
    return outcome


def recompute_formulas(ctx: WriteContext, entity: RuntimeEntity, ids: list[int]) -> int:
    """Recompute the stored formulas of rows ``ids`` of ``entity``; return how many changed.

    For changes the platform makes itself (an on-delete rule clearing a lookup, a
    publish changing a formula): the row's ``version`` stays, the write is
    conditional on it, and nothing is audited (formulas are derived data).
    """
    rules = rules_for(ctx, entity)
    if not rules.formulas:
        return 0
    table = entity.table
    changed = 0
    for row in ctx.conn.execute(select(table).where(table.c.id.in_(ids))).all():
        values = dict(row._mapping)
        formulas = compute_formulas(rules, values, now=ctx.now)
        changes = {k: v for k, v in formulas.items() if values.get(k) != v}
        if changes:
            ctx.conn.execute(
                update(table)
                .where(table.c.id == row.id, table.c.version == row.version)
                .values(**changes)
            )
            changed += 1
    return changed


def assign_auto_numbers(ctx: WriteContext, entity: RuntimeEntity) -> dict[str, str]:
    """Take the next number of every auto-number field of ``entity`` for a new record."""
    rules = rules_for(ctx, entity)
    return {
        name: assign_auto_number(
            ctx.conn, table=entity.table, field=name, options=options, now=ctx.now
        )
        for name, options in rules.auto_numbers
    }

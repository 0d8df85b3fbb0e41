"""Rollup fields kept correct in the transaction of every change to the records they summarise.

A rollup ``account.open_amount`` sums ``deal.amount`` over the deals whose
lookup ``deal.account`` names the account. Every change to a deal goes through
the records service's audit entries (create, update, delete, restore, purge,
and what on-delete rules do to other records), so :class:`RollupTracker`
watches those: it notes the parents a change touches (both the old and the new
parent when a deal moves to another account) and :meth:`RollupTracker.flush`
recomputes their rollups from the database before the transaction commits.

Recomputing is simple and always right: one aggregate query per rollup over
the touched parents, counting only live (not deleted) records. On PostgreSQL
the parent rows are locked first (``SELECT … FOR NO KEY UPDATE``, in id
order), so two transactions changing deals of one account recompute one after
the other and the second, reading after the first committed, sees the first's
deal. (``NO KEY``: a transaction that has just pointed a deal at the account
holds a key-share lock on the account row, through the foreign key; a plain
``FOR UPDATE`` from two such transactions deadlocks.) SQLite runs one writer
at a time anyway.

A rollup's value is derived data: changing it does not bump the parent's
``version`` or ``updated_at`` and writes no audit entry, so editing an account
while someone adds a deal does not turn into a stale-version conflict. Formulas
of the parent that use a rollup are recomputed with it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select, type_coerce, update

from formloom.engine.conditions import Condition, parse_condition
from formloom.engine.entities import EntityDoc
from formloom.engine.records.rollup_rules import RollupSpec, rollup_specs
from formloom.engine.records.rules import BUSINESS_TZ, compute_formulas, rollup_empty_value
from formloom.platform.audit import AuditEvent
from formloom.platform.conditions_sql import condition_clause
from formloom.platform.entity_runtime import RuntimeEntity
from formloom.platform.errors import NotFound
from formloom.platform.record_context import WriteContext
from formloom.platform.record_references import chunks
from formloom.platform.save_pipeline import rules_for
from formloom.platform.tables import meta_document, meta_version

CACHE_LIMIT = 256
_cache: dict[tuple[str, str, tuple[tuple[str, int], ...]], dict[str, list[RollupSpec]]] = {}
_lock = threading.Lock()


def rollups_over(conn: Connection, *, cache_key: str, env: str) -> dict[str, list[RollupSpec]]:
    """Every rollup of the environment's published entities, by the entity it summarises."""
    published = tuple(
        (row.name, int(row.published_version))
        for row in conn.execute(
            select(meta_document.c.name, meta_document.c.published_version)
            .where(meta_document.c.kind == "entity", meta_document.c.status == "published")
            .order_by(meta_document.c.name)
        )
    )
    key = (cache_key, env, published)
    found = _cache.get(key)
    if found is None:
        found = {}
        for name, version in published:
            body = conn.execute(
                select(meta_version.c.body).where(
                    meta_version.c.kind == "entity",
                    meta_version.c.name == name,
                    meta_version.c.version == version,
                )
            ).scalar_one()
            if any(f.get("type") == "rollup" for f in body.get("fields", [])):
                for _, spec in rollup_specs(EntityDoc.model_validate(body)):
                    found.setdefault(spec.child, []).append(spec)
        with _lock:
            if len(_cache) >= CACHE_LIMIT:
                _cache.clear()
            _cache[key] = found
    return found


def condition_fields(raw: Any) -> set[str]:
    """The fields a raw structured condition tests."""
    if isinstance(raw, dict):
        named = {raw["field"]} if isinstance(raw.get("field"), str) else set()
        return named.union(*(condition_fields(v) for k, v in raw.items() if k != "field"))
    if isinstance(raw, list):
        return set().union(*(condition_fields(v) for v in raw))
    return set()


@dataclass
class RollupTracker:
    """The parents whose rollups a transaction's changes touch, recomputed by :meth:`flush`."""

    by_child: dict[str, list[RollupSpec]] | None = None
    #: Parent ids by rollup (parent entity, field).
    parents: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    #: Child ids whose parent is read from the database at flush (updates, restores).
    unresolved: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    specs: dict[tuple[str, str], RollupSpec] = field(default_factory=dict)
    lookups: dict[str, bool] = field(default_factory=dict)

    def note(self, ctx: WriteContext, events: Iterable[AuditEvent]) -> None:
        """Note the parents that the audited changes ``events`` touch."""
        relevant = [e for e in events if self._has_lookups(ctx, e.entity)]
        if not relevant:
            return
        if self.by_child is None:
            self.by_child = rollups_over(ctx.conn, cache_key=ctx.cache_key, env=ctx.env)
        for event in relevant:
            for spec in self.by_child.get(event.entity, ()):
                self._note(spec, event)

    def _has_lookups(self, ctx: WriteContext, name: str) -> bool:
        """Whether records of ``name`` can roll up anywhere (a rollup needs their lookup).

        Spares the look-up of rollups for writes to entities without lookups.
        """
        found = self.lookups.get(name)
        if found is None:
            try:
                fields = ctx.entity(name).document.fields
            except NotFound:  # a removed entity whose references a purge clears
                fields = []
            found = self.lookups[name] = any(f.type == "lookup" for f in fields)
        return found

    def _note(self, spec: RollupSpec, event: AuditEvent) -> None:
        key = (spec.parent, spec.field)
        self.specs[key] = spec
        changes = event.changes
        if event.action in ("create", "delete", "purge"):
            self._add(key, [changes.get(spec.lookup)])
        elif event.action == "restore":
            self.unresolved.setdefault(key, set()).add(event.record_id)
        elif spec.lookup in changes:
            self._add(key, changes[spec.lookup])
        else:
            watched = {spec.options.field, *condition_fields(spec.options.condition)}
            if watched & changes.keys():
                self.unresolved.setdefault(key, set()).add(event.record_id)

    def _add(self, key: tuple[str, str], ids: Iterable[Any]) -> None:
        found = {int(i) for i in ids if i is not None}
        if found:
            self.parents.setdefault(key, set()).update(found)

    def flush(self, ctx: WriteContext) -> None:
        """Recompute the rollups of every noted parent, in this transaction."""
        for key, children in self.unresolved.items():
            spec = self.specs[key]
            table = ctx.entity(spec.child).table
            link = table.c[spec.lookup]
            for part in chunks(sorted(children)):
                query = select(link).where(table.c.id.in_(part), link.is_not(None))
                self._add(key, ctx.conn.execute(query).scalars())
        self.unresolved = {}
        by_parent: dict[str, dict[str, set[int]]] = {}
        for (parent, name), ids in self.parents.items():
            by_parent.setdefault(parent, {})[name] = ids
        self.parents = {}
        for parent in sorted(by_parent):
            ids = set().union(*by_parent[parent].values())
            specs = [self.specs[(parent, name)] for name in sorted(by_parent[parent])]
            refresh(ctx, ctx.entity(parent), specs, sorted(ids))


def refresh(
    ctx: WriteContext, parent: RuntimeEntity, specs: list[RollupSpec], ids: list[int]
) -> int:
    """Recompute ``specs`` (rollups of ``parent``) for parent records ``ids``; rows changed.

    The parents' formulas that use a changed rollup are recomputed as well.
    """
    table = parent.table
    rules = rules_for(ctx, parent)
    names = [s.field for s in specs]
    dependent = rules.formulas_using(names)
    changed_rows = 0
    for part in chunks(ids):
        query = select(table).where(table.c.id.in_(part)).order_by(table.c.id)
        if ctx.conn.dialect.name == "postgresql":
            query = query.with_for_update(key_share=True)
        rows = {int(r.id): dict(r._mapping) for r in ctx.conn.execute(query)}
        fresh = {s.field: aggregates(ctx, s, list(rows)) for s in specs}
        for record_id, row in rows.items():
            values = {s.field: fresh[s.field].get(record_id, _empty(s)) for s in specs}
            if dependent:
                values.update(compute_formulas(rules, {**row, **values}, now=ctx.now))
            changes = {k: v for k, v in values.items() if row.get(k) != v}
            if changes:
                ctx.conn.execute(update(table).where(table.c.id == record_id).values(**changes))
                changed_rows += 1
    return changed_rows


def aggregates(ctx: WriteContext, spec: RollupSpec, parent_ids: list[int]) -> dict[int, Any]:
    """The rollup's value for each of ``parent_ids`` that has matching live child records."""
    if not parent_ids:
        return {}
    child = ctx.entity(spec.child)
    table = child.table
    link = table.c[spec.lookup]
    options = spec.options
    value: ColumnElement[Any]
    if options.aggregate == "count":
        value = func.count(table.c[options.field]) if options.field else func.count()
    else:
        assert options.field is not None
        column = table.c[options.field]
        if options.aggregate == "sum":
            value = func.sum(column)
        elif options.aggregate == "avg":
            value = func.avg(column)
        else:
            extreme = func.min(column) if options.aggregate == "min" else func.max(column)
            value = type_coerce(extreme, column.type)
    query = (
        select(link, value).where(link.in_(parent_ids), table.c.deleted_at.is_(None)).group_by(link)
    )
    condition = _condition(ctx, spec, child)
    if condition is not None:
        query = query.where(condition_clause(condition, table, dialect=ctx.conn.dialect.name))
    return {int(pid): _stored(spec, result) for pid, result in ctx.conn.execute(query)}


def _condition(ctx: WriteContext, spec: RollupSpec, child: RuntimeEntity) -> Condition | None:
    raw = spec.options.condition
    if raw is None:
        return None
    return parse_condition(raw, child.compiled, now=ctx.now, tz=BUSINESS_TZ)


def _stored(spec: RollupSpec, result: Any) -> Any:
    """An aggregate as the rollup column stores it (numbers rounded half up to its scale)."""
    options = spec.options
    if result is None:
        return _empty(spec)
    if options.aggregate == "count":
        return int(result)
    if options.result != "number":
        return result
    step = Decimal(1).scaleb(-options.scale)
    return Decimal(str(result)).quantize(step, ROUND_HALF_UP)


def _empty(spec: RollupSpec) -> Any:
    return rollup_empty_value(spec.options)

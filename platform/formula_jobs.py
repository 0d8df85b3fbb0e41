"""Background jobs that recompute stored computed fields after a publish changes them.

Publishing an entity whose formulas changed (or that gained formulas) enqueues
``recompute_formulas`` in the publish transaction; new or changed rollups
enqueue ``recompute_rollups``; a new auto-number field enqueues
``backfill_auto_numbers``, which numbers the existing rows that have no number
yet, oldest first, in the period of their creation date (a contract created in
2025 gets ``HT-2025-…``), through the same counters as new records, so no
number is given twice (:func:`enqueue_recomputes`). Saves made after the
publish already use the new definitions; the job brings every existing row up
to date, deleted ones included (a restore brings them back as they are).

Both walk the table in id order, :data:`BATCH` rows per transaction, and report
progress between batches. They are idempotent: a value is computed from the
row alone, so running a job again (a retry, or a takeover after a worker died)
writes the same values. A formula row is updated only if its version is still
the one read (``WHERE id = ? AND version = ?``): a row saved meanwhile got its
formulas from that save. Like rollups, recomputed formulas are derived data:
the row's ``version`` and ``updated_at`` do not change and no audit entry is
written.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from sqlalchemy import Connection, func, select, update

from formloom.engine.entities import EntityDoc
from formloom.engine.records.rollup_rules import rollup_specs
from formloom.platform.counters import assign_auto_number
from formloom.platform.entity_runtime import RuntimeEntity
from formloom.platform.errors import NotFound
from formloom.platform.jobs import JobContext, JobType, enqueue, job_types
from formloom.platform.record_context import WriteContext
from formloom.platform.rollups import refresh
from formloom.platform.save_pipeline import recompute_formulas, rules_for

BATCH = 500
RECOMPUTE_FORMULAS = "recompute_formulas"
RECOMPUTE_ROLLUPS = "recompute_rollups"
BACKFILL_AUTO_NUMBERS = "backfill_auto_numbers"


class _Recompute(JobType):
    """Walks an entity's rows in batches; subclasses recompute one batch."""

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        name = str(payload["entity"])
        workspace = ctx.workspace
        with workspace.begin(ctx.env, readonly=True) as conn:
            writer = _context(conn, ctx)
            try:
                entity = writer.entity(name)
            except NotFound:
                return  # removed since: nothing to recompute
            total = int(conn.execute(select(func.count()).select_from(entity.table)).scalar_one())
        done, last_id, changed = 0, 0, 0
        ctx.report_progress(0, total, f"{self.name} `{name}`")
        while True:
            with workspace.begin(ctx.env) as conn:
                writer = _context(conn, ctx)
                entity = writer.entity(name)
                table = entity.table
                ids = list(
                    conn.execute(
                        select(table.c.id)
                        .where(table.c.id > last_id)
                        .order_by(table.c.id)
                        .limit(BATCH)
                    ).scalars()
                )
                if not ids:
                    break
                changed += self.batch(writer, entity, ids)
            done, last_id = done + len(ids), ids[-1]
            ctx.report_progress(min(done, total), total, f"{changed} row(s) changed")
        ctx.report_progress(done, max(done, total), f"done: {changed} row(s) changed")

    @abstractmethod
    def batch(self, writer: WriteContext, entity: RuntimeEntity, ids: list[int]) -> int:
        """Recompute rows ``ids`` in ``writer``'s transaction; return how many changed."""


class RecomputeFormulas(_Recompute):
    """Payload ``{"entity": name}``: recompute every formula of every row."""

    name = RECOMPUTE_FORMULAS

    def batch(self, writer: WriteContext, entity: RuntimeEntity, ids: list[int]) -> int:
        return recompute_formulas(writer, entity, ids)


class RecomputeRollups(_Recompute):
    """Payload ``{"entity": name}``: recompute every rollup of every row."""

    name = RECOMPUTE_ROLLUPS

    def batch(self, writer: WriteContext, entity: RuntimeEntity, ids: list[int]) -> int:
        specs = [spec for _, spec in rollup_specs(entity.document)]
        return refresh(writer, entity, specs, ids) if specs else 0


class BackfillAutoNumbers(_Recompute):
    """Payload ``{"entity": name}``: number the rows whose auto-number fields are empty.

    Idempotent: a row that has a number keeps it (a retry numbers only the rest).
    Derived data like the other recomputes: no new version, no audit entry.
    """

    name = BACKFILL_AUTO_NUMBERS

    def batch(self, writer: WriteContext, entity: RuntimeEntity, ids: list[int]) -> int:
        table = entity.table
        changed = 0
        for name, options in rules_for(writer, entity).auto_numbers:
            column = table.c[name]
            rows = writer.conn.execute(
                select(table.c.id, table.c.created_at)
                .where(table.c.id.in_(ids), column.is_(None))
                .order_by(table.c.id)
            ).all()
            for row in rows:
                number = assign_auto_number(
                    writer.conn, table=table, field=name, options=options, now=row.created_at
                )
                writer.conn.execute(
                    update(table)
                    .where(table.c.id == row.id, column.is_(None))
                    .values({name: number})
                )
                changed += 1
        return changed


def _context(conn: Connection, ctx: JobContext) -> WriteContext:
    return WriteContext(
        conn, cache_key=ctx.workspace.cache_key, env=ctx.env, actor_id=None, lang="en"
    )


def enqueue_recomputes(
    conn: Connection, previous: EntityDoc | None, document: EntityDoc, *, version: int
) -> list[int]:
    """Enqueue the jobs a publish of ``document`` over ``previous`` needs; their ids.

    Formulas: when one is added or its type or options changed. Rollups: the
    same for rollup fields. Auto-numbers: when one is added (or a field becomes
    one). A new entity has no rows, so needs none.
    """
    if previous is None:
        return []
    before = {(f.id or f.name): f for f in previous.fields}
    jobs = []
    added_numbers = [
        f
        for f in document.fields
        if f.type == "auto_number"
        and ((old := before.get(f.id or f.name)) is None or old.type != f.type)
    ]
    if added_numbers:
        key = f"{BACKFILL_AUTO_NUMBERS}:{document.name}:{version}"
        jobs.append(
            enqueue(
                conn,
                job_type=BACKFILL_AUTO_NUMBERS,
                payload={"entity": document.name},
                dedupe_key=key,
            )
        )
    for kind, job_type in (("formula", RECOMPUTE_FORMULAS), ("rollup", RECOMPUTE_ROLLUPS)):
        changed = [
            f
            for f in document.fields
            if f.type == kind
            and (
                (old := before.get(f.id or f.name)) is None
                or old.type != f.type
                or old.options != f.options
            )
        ]
        if changed:
            key = f"{job_type}:{document.name}:{version}"
            jobs.append(
                enqueue(conn, job_type=job_type, payload={"entity": document.name}, dedupe_key=key)
            )
    return jobs


job_types.register(RecomputeFormulas())
job_types.register(RecomputeRollups())
job_types.register(BackfillAutoNumbers())

"""Schema-change benchmarks: add a nullable field to a big entity, publish a wide entity.

For one backend, in one fresh workspace:

* **add field** — two entities with the same handful of fields, one filled with
  ``small`` rows and one with ``large`` rows (plain SQL ``INSERT … SELECT``), and
  next to each a *raw* table with exactly the same columns and rows, made with
  plain SQL. Each timed round publishes the entity document with one more
  nullable field through :meth:`MetaStore.apply` (validation, metadata reads,
  DDL through Alembic, new version, commit — all of it), and runs a plain
  ``ALTER TABLE … ADD COLUMN … VARCHAR(255)`` in its own transaction on the raw
  table of the same size. Formloom and raw alternate, so drift hits both alike.
  After every formloom publish the table's storage is checked (PostgreSQL:
  ``pg_relation_filenode`` and size; SQLite: the table's root page) to prove
  that no rewrite happened.
* **wide entity** — publish a new entity with ``wide_fields`` fields of mixed
  types through :meth:`MetaStore.apply`, next to a raw ``CREATE TABLE`` with the
  same columns (the DDL text is compiled before the clock starts).

Every timed operation is a complete, committed transaction; nothing is cached
between rounds except what formloom itself keeps in a running process.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import re
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Date,
    MetaData,
    Numeric,
    String,
    Table,
    case,
    cast,
    event,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.schema import CreateTable

from bench.backends import settle
from bench.machine import CpuMeter
from bench.phases import phase_timers
from bench.timing import Samples, record
from formloom.engine.entities.changes import column_of
from formloom.engine.entities.model import FieldDef
from formloom.engine.meta import CheckContext
from formloom.platform.database import Workspace
from formloom.platform.entity_tables import system_columns, user_column
from formloom.platform.environments import PRODUCTION
from formloom.platform.metastore import (
    MetaStore,
    PublishOptions,
    PublishResult,
    SourceDocument,
    kind_of,
)
from formloom.platform.tables import UtcDateTime

ENV = PRODUCTION
REPO = Path(__file__).resolve().parent.parent
STAMP = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
STAGES = ("prospect", "qualify", "proposal", "negotiate", "closed")


# -- documents --------------------------------------------------------------------------------


def _label(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh}


def deal_fields() -> list[dict[str, Any]]:
    """The handful of fields of the entity that gets a new field."""
    return [
        {"name": "name", "label": _label("Name", "名称"), "type": "text"},
        {"name": "amount", "label": _label("Amount", "金额"), "type": "currency"},
        {
            "name": "stage",
            "label": _label("Stage", "阶段"),
            "type": "single_select",
            "options": {"choices": [{"value": s, "label": _label(s, s)} for s in STAGES]},
        },
        {"name": "close_date", "label": _label("Close date", "预计成交日"), "type": "date"},
        {"name": "probability", "label": _label("Probability", "赢率"), "type": "percent"},
        {"name": "won", "label": _label("Won", "已赢单"), "type": "boolean"},
    ]


def extra_field(number: int) -> dict[str, Any]:
    """The nullable field added in round ``number`` (a text field: VARCHAR(255))."""
    return {
        "name": f"extra_{number}",
        "label": _label(f"Extra {number}", f"附加字段 {number}"),
        "type": "text",
    }


def entity_body(name: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "label": _label(name.replace("_", " ").title(), name),
        "title_field": fields[0]["name"],
        "fields": fields,
    }


_WIDE_TYPES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("text", {}),
    ("integer", {}),
    ("decimal", {"precision": 18, "scale": 4}),
    ("currency", {}),
    ("percent", {}),
    ("boolean", {}),
    ("date", {}),
    ("datetime", {}),
    (
        "single_select",
        {"choices": [{"value": v, "label": _label(v, v)} for v in ("low", "mid", "high")]},
    ),
    ("multi_select", {"choices": [{"value": v, "label": _label(v, v)} for v in ("a", "b")]}),
    ("email", {}),
    ("phone", {}),
    ("url", {}),
    ("long_text", {}),
)


def wide_fields(count: int) -> list[dict[str, Any]]:
    """``count`` fields cycling through the built-in field types."""
    fields = []
    for i in range(count):
        type_name, options = _WIDE_TYPES[i % len(_WIDE_TYPES)]
        raw: dict[str, Any] = {
            "name": f"{type_name}_{i:03d}",
            "label": _label(f"Field {i}", f"字段 {i}"),
            "type": type_name,
        }
        if options:
            raw["options"] = options
        fields.append(raw)
    return fields


# -- plain SQL side ---------------------------------------------------------------------------


def physical_table(name: str, fields: list[dict[str, Any]], schema: str) -> Table:
    """The table an entity with ``fields`` has: system columns, then one column per field."""
    columns = [user_column(column_of(FieldDef.model_validate(f)), schema=None) for f in fields]
    return Table(name, MetaData(), *system_columns(), *columns, schema=schema)


def create_ddl(workspace: Workspace, table: Table) -> str:
    """The ``CREATE TABLE`` statement of ``table`` as plain SQL text for this database."""
    return str(CreateTable(table).compile(dialect=workspace.engine.dialect)).strip()


def run_sql(workspace: Workspace, statement: str) -> None:
    """One plain SQL statement in its own transaction (the raw baseline)."""
    with workspace.begin(ENV) as conn:
        conn.exec_driver_sql(statement)


def add_column_sql(schema: str, table: str, column: str) -> str:
    return f'ALTER TABLE "{schema}"."{table}" ADD COLUMN "{column}" VARCHAR(255)'


def fill(workspace: Workspace, table: Table, rows: int) -> None:
    """Insert ``rows`` deal rows with one ``INSERT … SELECT`` over a number series."""
    numbers: Any
    if workspace.is_sqlite:
        seed = select(literal(1).label("g")).cte("numbers", recursive=True)
        numbers = seed.union_all(select((seed.c.g + 1).label("g")).where(seed.c.g < rows))
        g: ColumnElement[Any] = numbers.c.g
    else:
        numbers = func.generate_series(1, rows).column_valued("g")
        g = numbers
    values: dict[str, ColumnElement[Any]] = {
        "created_at": literal(STAMP, UtcDateTime()),
        "updated_at": literal(STAMP, UtcDateTime()),
        "owner_id": g % 50 + 1,
        "version": literal(1),
        "name": literal("Deal ", String()) + cast(g, String(20)),
        "amount": cast((g % 100_000) * literal(1.25), Numeric(18, 2)),
        "stage": case(*((g % len(STAGES) == i, s) for i, s in enumerate(STAGES[:-1]))),
        "close_date": literal(date(2026, 6, 30), Date()),
        "probability": cast((g % 100) * literal(0.01), Numeric(9, 4)),
        "won": g % 7 == 0,
    }
    query = select(*(v.label(k) for k, v in values.items()))
    if workspace.is_sqlite:
        query = query.select_from(numbers)
    with workspace.begin(ENV) as conn:
        conn.execute(insert(table).from_select(list(values), query))


def storage_state(workspace: Workspace, schema: str, table: str) -> tuple[int, int]:
    """(where the table's data lives, how big it is): a rewrite changes one of them."""
    with workspace.begin(ENV, readonly=True) as conn:
        if workspace.is_sqlite:
            master = Table(
                "sqlite_master", MetaData(), Column("name"), Column("rootpage"), schema=schema
            )
            root = conn.execute(
                select(master.c.rootpage).where(master.c.name == table)
            ).scalar_one()
            pages = conn.exec_driver_sql(f'PRAGMA "{schema}".page_count').scalar_one()
            return int(root), int(pages)
        qualified = f'"{schema}"."{table}"'
        node, size = conn.execute(
            text("SELECT pg_relation_filenode(CAST(:t AS regclass)), pg_relation_size(:t)"),
            {"t": qualified},
        ).one()
        return int(node), int(size)


def rewritten(before: tuple[int, int], after: tuple[int, int], *, sqlite: bool) -> bool:
    """Whether an operation rewrote the table (new storage, or the data grew by > 10 %)."""
    if before[0] != after[0]:
        return True
    # SQLite's page count covers the whole file; PostgreSQL's size is the table's heap.
    return not sqlite and after[1] > before[1] * 1.1 + 8192


# -- the benchmark ----------------------------------------------------------------------------


@dataclass
class AddFieldSize:
    """One table size: formloom's publish and the raw ALTER TABLE, side by side."""

    rows: int
    entity: str
    raw_table: str
    fields: list[dict[str, Any]]
    formloom: Samples = field(default_factory=Samples)
    raw: Samples = field(default_factory=Samples)
    fill_seconds: float = 0.0
    rewrites: int = 0
    checked: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "formloom": self.formloom.as_dict(),
            "raw_alter": self.raw.as_dict(),
            "fill_seconds": round(self.fill_seconds, 2),
            "table_rewrites_detected": self.rewrites,
            "publishes_checked_for_rewrite": self.checked,
        }


@dataclass
class BackendResult:
    backend: str
    sizes: list[AddFieldSize]
    wide_fields: int
    wide_formloom: Samples = field(default_factory=Samples)
    wide_raw: Samples = field(default_factory=Samples)
    seconds: float = 0.0
    profiles: list[dict[str, Any]] = field(default_factory=list)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "add_field": [s.as_dict() for s in self.sizes],
            "wide_entity": {
                "fields": self.wide_fields,
                "formloom": self.wide_formloom.as_dict(),
                "raw_create": self.wide_raw.as_dict(),
            },
            "seconds": round(self.seconds, 1),
            "cpu": self.cpu,
        }


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    repeat: int
    warmup: int
    wide_fields: int
    profile_rounds: int


def publish(store: MetaStore, body: dict[str, Any]) -> None:
    """Publish one entity document the way `formloom apply` does, and check it changed."""
    source = SourceDocument("entity", body, f"{body['name']}.json")
    # (Annotated: inside MetaStore, `list[...]` in its own signatures names its `list` method.)
    results: Sequence[PublishResult] = store.apply(ENV, [source], PublishOptions())
    if len(results) != 1 or not results[0].changed:
        raise RuntimeError(f"publishing {body['name']} changed nothing: the benchmark is wrong")


def check_rows(workspace: Workspace, schema: str, tables: list[str], rows: int) -> None:
    with workspace.begin(ENV, readonly=True) as conn:
        for table in tables:
            found = conn.execute(
                select(func.count()).select_from(Table(table, MetaData(), schema=schema))
            ).scalar_one()
            if found != rows:
                raise RuntimeError(f"{schema}.{table} has {found} rows, expected {rows}")


def run_backend(
    workspace: Workspace, backend: str, plan: Plan, log: Callable[[str], None]
) -> BackendResult:
    """Every schema-change benchmark on one (fresh, initialised) workspace."""
    started = time.perf_counter()
    store = MetaStore(workspace)
    schema = workspace.env_schema(ENV)
    sizes = [
        AddFieldSize(rows, f"deal_{i}", f"raw_deal_{i}", deal_fields())
        for i, rows in enumerate(plan.sizes)
    ]
    for size in sizes:
        publish(store, entity_body(size.entity, size.fields))
        raw_table = physical_table(size.raw_table, size.fields, schema)
        run_sql(workspace, create_ddl(workspace, raw_table))
        began = time.perf_counter()
        for name in (size.entity, size.raw_table):
            fill(workspace, physical_table(name, size.fields, schema), size.rows)
        size.fill_seconds = time.perf_counter() - began
        check_rows(workspace, schema, [size.entity, size.raw_table], size.rows)
        log(
            f"{backend}: filled {size.entity} and {size.raw_table} with {size.rows:,} rows "
            f"each in {size.fill_seconds:.1f} s"
        )
    done = settle(workspace, [t for s in sizes for t in (s.entity, s.raw_table)])
    log(f"{backend}: settled: {done}")

    result = BackendResult(backend, sizes, plan.wide_fields)
    log(f"{backend}: adding a field, {plan.warmup} warm-up + {plan.repeat} timed rounds")
    meter = CpuMeter()
    meter.start()
    for round_ in range(plan.warmup + plan.repeat):
        warmup = round_ < plan.warmup
        for size in sizes:
            number = round_ + 1
            size.fields.append(extra_field(number))
            alter = add_column_sql(schema, size.raw_table, f"extra_{number}")
            steps = [
                _formloom_step(workspace, store, schema, size, warmup),
                _timed(size.raw, partial(run_sql, workspace, alter), warmup),
            ]
            for step in steps if round_ % 2 == 0 else reversed(steps):
                step()
    result.cpu["add_field"] = meter.stop()
    if plan.profile_rounds:
        # A fresh entity like the small one, so the profile sees documents of the size
        # the timed rounds saw (it grows by one field per publish, and is purged after).
        profiled = AddFieldSize(plan.sizes[0], "deal_profiled", "", deal_fields())
        publish(store, entity_body(profiled.entity, profiled.fields))
        fill(workspace, physical_table(profiled.entity, profiled.fields, schema), profiled.rows)
        log(f"{backend}: profiling {plan.profile_rounds} add-field publishes")

        def add_field() -> dict[str, Any]:
            profiled.fields.append(extra_field(len(profiled.fields) + 1000))
            return entity_body(profiled.entity, list(profiled.fields))

        first = len(profiled.fields) + 1
        last = first + 2 * plan.profile_rounds - 1
        label = f"add a nullable field at {profiled.rows:,} rows, entity of {first}→{last} fields"
        result.profiles.append(
            profile_publish(workspace, store, add_field, plan.profile_rounds, label)
        )
        purge(store, profiled.entity)

    # Each wide entity (and raw table) is dropped again, untimed, before the next round,
    # so every round publishes into the same environment (deal_0 and deal_1 only).
    log(f"{backend}: publishing {plan.wide_fields}-field entities, same rounds")
    fields = wide_fields(plan.wide_fields)
    meter.start()
    for round_ in range(plan.warmup + plan.repeat):
        warmup = round_ < plan.warmup
        body = entity_body(f"wide_{round_}", fields)
        raw_name = f"raw_wide_{round_}"
        ddl = create_ddl(workspace, physical_table(raw_name, fields, schema))
        steps = [
            _timed(result.wide_formloom, partial(publish, store, body), warmup),
            _timed(result.wide_raw, partial(run_sql, workspace, ddl), warmup),
        ]
        for step in steps if round_ % 2 == 0 else reversed(steps):
            step()
        purge(store, body["name"])
        run_sql(workspace, f'DROP TABLE "{schema}"."{raw_name}"')
    result.cpu["wide"] = meter.stop()
    if plan.profile_rounds:
        log(f"{backend}: profiling {plan.profile_rounds} wide publishes")
        names = iter(range(10_000))
        label = f"publish a new {plan.wide_fields}-field entity"
        result.profiles.append(
            profile_publish(
                workspace,
                store,
                lambda: entity_body(f"profiled_wide_{next(names)}", fields),
                plan.profile_rounds,
                label,
                cleanup=lambda b: purge(store, b["name"]),
            )
        )
    result.seconds = time.perf_counter() - started
    return result


def purge(store: MetaStore, entity: str) -> None:
    """Remove an entity for good (drops its table): untimed cleanup between rounds."""
    store.remove(ENV, "entity", entity, PublishOptions(purge=True))


def _timed(samples: Samples, action: Callable[[], object], warmup: bool) -> Callable[[], None]:
    return lambda: record(samples, action, warmup=warmup)


def _formloom_step(
    workspace: Workspace, store: MetaStore, schema: str, size: AddFieldSize, warmup: bool
) -> Callable[[], None]:
    body = entity_body(size.entity, list(size.fields))

    def step() -> None:
        before = storage_state(workspace, schema, size.entity)
        record(size.formloom, lambda: publish(store, body), warmup=warmup)
        after = storage_state(workspace, schema, size.entity)
        size.checked += 1
        size.rewrites += rewritten(before, after, sqlite=workspace.is_sqlite)

    return step


# -- where the time goes ----------------------------------------------------------------------


@contextmanager
def statement_log(workspace: Workspace) -> Iterator[list[tuple[str, float]]]:
    """Every SQL statement run on the workspace's engine, with its execute time in ms."""
    found: list[tuple[str, float]] = []
    starts: list[float] = []

    def before(*_args: Any) -> None:
        starts.append(time.perf_counter())

    def after(_conn: Connection, _cursor: Any, statement: str, *_rest: Any) -> None:
        found.append((statement, (time.perf_counter() - starts.pop()) * 1000))

    event.listen(workspace.engine, "before_cursor_execute", before)
    event.listen(workspace.engine, "after_cursor_execute", after)
    try:
        yield found
    finally:
        event.remove(workspace.engine, "before_cursor_execute", before)
        event.remove(workspace.engine, "after_cursor_execute", after)


#: (label, file suffix, function names): the parts of a publish worth naming.
PHASES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("MetaStore.apply (the whole publish)", "platform/metastore.py", ("apply",)),
    (
        "require_environment (its own transaction)",
        "platform/environments.py",
        ("require_environment",),
    ),
    ("Workspace.begin (connect, ATTACH, BEGIN … COMMIT)", "platform/database.py", ("begin",)),
    ("SQLite ATTACH/DETACH of the env file", "platform/database.py", ("_attach",)),
    (
        "environment check + every published body (_published_bodies_of)",
        "platform/metastore.py",
        ("_published_bodies_of",),
    ),
    ("validate the document (all of it)", "engine/meta/kinds.py", ("validate",)),
    ("validate: JSON Schema", "engine/meta/kinds.py", ("schema_issues",)),
    ("validate: semantic checks", "engine/entities/kind.py", ("check",)),
    ("EntityPublisher.publish (plan + DDL)", "platform/publishers.py", ("publish",)),
    ("plan the change (engine)", "engine/entities/changes.py", ("plan_entity_change",)),
    ("DDL through Alembic (SchemaSync.apply)", "platform/schema_sync.py", ("apply",)),
    (
        "metadata row reads/writes",
        "platform/metastore.py",
        ("_document_row", "_version_body", "_next_version", "_insert_version"),
    ),
    ("pydantic model_validate (every call)", "pydantic/main.py", ("model_validate",)),
    ("pydantic model_dump (every call)", "pydantic/main.py", ("model_dump",)),
    ("commit (SQLite)", "~", ("<method 'commit' of 'sqlite3.Connection' objects>",)),
    ("commit (PostgreSQL)", "psycopg/connection.py", ("commit",)),
)


def phase_breakdown(stats: pstats.Stats, rounds: int) -> list[dict[str, Any]]:
    """Cumulative time per publish of the named phases (under cProfile, so inflated)."""
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    totals = []
    for label, suffix, names in PHASES:
        cumulative = sum(
            entry[3]
            for (filename, _line, function), entry in table.items()
            if filename.endswith(suffix) and function in names
        )
        if cumulative:
            totals.append({"phase": label, "ms": round(cumulative * 1000 / rounds, 3)})
    whole = totals[0]["ms"] if totals else 0.0
    for row in totals:
        row["share"] = round(row["ms"] / whole, 3) if whole else 0.0
    return totals


def validation_alone(store: MetaStore, body: dict[str, Any], rounds: int = 20) -> float:
    """Median ms of the engine's validation of ``body`` on its own (no database, no profiler)."""
    kind = kind_of("entity")
    context = CheckContext(published=store.published(ENV))
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        kind.validate(body, context)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def profile_publish(
    workspace: Workspace,
    store: MetaStore,
    next_body: Callable[[], dict[str, Any]],
    rounds: int,
    label: str,
    cleanup: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Where publishes spend their time: wall and SQL time unprofiled, then a cProfile run."""
    schema = workspace.env_schema(ENV)
    wall = 0.0
    per_round: list[list[tuple[str, float]]] = []
    with statement_log(workspace) as statements:
        for _ in range(rounds):
            body = next_body()
            first = len(statements)
            started = time.perf_counter()
            publish(store, body)
            wall += (time.perf_counter() - started) * 1000
            per_round.append(statements[first:])
            if cleanup is not None:
                cleanup(body)
    sql_ms = sum(ms for found in per_round for _, ms in found) / rounds
    statements_per_publish = sum(len(found) for found in per_round) / rounds

    validate_ms = validation_alone(store, body)

    phase_wall = 0.0
    with phase_timers() as phases:
        for _ in range(rounds):
            body = next_body()
            started = time.perf_counter()
            publish(store, body)
            phase_wall += (time.perf_counter() - started) * 1000
            if cleanup is not None:
                cleanup(body)
    timed_phases = [
        {"phase": label, "ms": round(ms / rounds, 3)}
        for label, ms in sorted(phases.items(), key=lambda item: -item[1])
    ]

    profiler = cProfile.Profile()
    for _ in range(rounds):
        body = next_body()
        profiler.enable()
        publish(store, body)
        profiler.disable()
        if cleanup is not None:
            cleanup(body)
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(15)
    return {
        "label": label,
        "rounds": rounds,
        "wall_ms_per_publish": round(wall / rounds, 3),
        "sql_ms_per_publish": round(sql_ms, 3),
        "statements_per_publish": statements_per_publish,
        "validate_ms": round(validate_ms, 3),
        "timed_phases": timed_phases,
        "timed_phases_wall_ms": round(phase_wall / rounds, 3),
        "statements": [
            {"ms": round(ms, 3), "sql": " ".join(sql.split())[:150].replace(schema, "<env>")}
            for sql, ms in per_round[-1]
        ],
        "phases": phase_breakdown(stats, rounds),
        "cprofile": _short_paths(stream.getvalue()),
        "stats": stats,
    }


def _short_paths(report: str) -> str:
    """Profile lines with paths relative to site-packages, the repository or the stdlib."""
    report = re.sub(r"/\S*/site-packages/", "", report)
    report = report.replace(str(REPO) + "/", "")
    return re.sub(r"/\S*/lib/python3\.\d+/", "stdlib/", report)

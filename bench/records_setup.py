"""Data of the records benchmarks: the `opportunity` entity, the baseline table, the rows.

Both sides get the same rows, loaded with one plain SQL ``INSERT … SELECT``
over a number series (PostgreSQL ``generate_series``, SQLite a recursive CTE):
row ``g`` has stage ``STAGES[g % 5]`` (so each stage holds a fifth of the rows),
an amount spread over 0–99,999.99, a close date spread over 2020–2027 and one
of 50 owners; every NOT NULL system column is filled.

formloom's side is a real published entity (``MetaStore.apply``, stage and
close_date indexed); the baseline's table has the same column types and the
same two indexes. On PostgreSQL the baseline table lives in schema
``<namespace>_baseline`` (dropped with the workspace's namespace); on SQLite in
its own file next to the workspace's.

Every request authenticates (:func:`create_credentials`): formloom's with a login
token of an administrator (who bypasses role checks) or of a user whose role
``seller`` reaches every opportunity (scope ``all``), both issued by formloom's
own services; the baseline's with a token of its minimal bearer check.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, event, func, select, text

from bench import baseline_app
from bench.backends import settle
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import load_entity
from formloom.platform.environments import PRODUCTION
from formloom.platform.metastore import MetaStore, PublishOptions, PublishResult, SourceDocument
from formloom.platform.record_query import list_records
from tests.identity import bearer_token, create_user

ENV = PRODUCTION
ENTITY = "opportunity"
STAGES = baseline_app.STAGES
STAMP = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
#: The list every list request asks for (the stage varies from request to request).
LIST_SORT = "close_date"
PAGE = 50


def _label(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh}


#: The role of the non-admin benchmark user: every opportunity, every action.
SELLER_ROLE = {
    "name": "seller",
    "label": {"en": "Seller", "zh": "销售"},
    "entities": {
        ENTITY: {"create": True, "read": "all", "update": "all", "delete": "all"},
    },
}
#: Who the requests of each side authenticate as: ``admin`` (formloom: an administrator)
#: and ``role`` (formloom: a user with the role ``seller``; the baseline has no roles).
PRINCIPALS = ("admin", "role")

#: The index of the second list phase, on both sides: the filter and the sort column.
COMPOSITE_INDEX = {"name": "stage_close_date", "fields": ["stage", "close_date"]}


def opportunity_document(*, composite_index: bool = False) -> dict[str, Any]:
    """The formloom entity: name, amount (currency), stage (indexed), close date (indexed).

    ``composite_index`` adds an index on (stage, close_date).
    """
    document: dict[str, Any] = {
        "name": ENTITY,
        "label": _label("Opportunity", "商机"),
        "title_field": "name",
        "fields": [
            {"name": "name", "label": _label("Name", "名称"), "type": "text"},
            {"name": "amount", "label": _label("Amount", "金额"), "type": "currency"},
            {
                "name": "stage",
                "label": _label("Stage", "阶段"),
                "type": "single_select",
                "indexed": True,
                "options": {"choices": [{"value": s, "label": _label(s, s)} for s in STAGES]},
            },
            {
                "name": "close_date",
                "label": _label("Close date", "预计成交日"),
                "type": "date",
                "indexed": True,
            },
        ],
    }
    if composite_index:
        document["indexes"] = [COMPOSITE_INDEX]
    return document


@dataclass(frozen=True)
class Sides:
    """Where each side's table lives: formloom's workspace, the baseline's URL and schema."""

    workspace: Workspace
    baseline_url: str
    baseline_schema: str | None

    @property
    def formloom_table(self) -> str:
        return f'"{self.workspace.env_schema(ENV)}"."{ENTITY}"'

    @property
    def baseline_table(self) -> str:
        schema = self.baseline_schema
        return f'"{schema}"."{ENTITY}"' if schema else f'"{ENTITY}"'


def sides_for(workspace: Workspace) -> Sides:
    """The baseline next to ``workspace``: its own file (SQLite) or schema (PostgreSQL)."""
    if workspace.is_sqlite:
        path = workspace.sqlite_path.with_name("baseline.sqlite")
        return Sides(workspace, f"sqlite:///{path}", None)
    url = workspace.url.render_as_string(hide_password=False)
    return Sides(workspace, url, f"{workspace.settings.namespace}_baseline")


def publish_entity(workspace: Workspace, *, composite_index: bool = False) -> None:
    store = MetaStore(workspace)
    document = opportunity_document(composite_index=composite_index)
    source = SourceDocument("entity", document, f"{ENTITY}.json")
    results: list[PublishResult] = store.apply(ENV, [source], PublishOptions())
    if len(results) != 1 or not results[0].changed:
        raise RuntimeError("publishing the opportunity entity changed nothing")


def create_credentials(sides: Sides) -> dict[str, dict[str, str]]:
    """``Authorization`` header values per side and principal (see :data:`PRINCIPALS`).

    formloom: an administrator and a ``seller`` (scope ``all``), each with a login token
    from formloom's token service; the baseline: one user and token for both.
    """
    workspace = sides.workspace
    role = SourceDocument("role", SELLER_ROLE, "seller.json")
    MetaStore(workspace).apply(ENV, [role], PublishOptions())
    admin = create_user(workspace, "bench_admin", admin=True)
    seller = create_user(workspace, "bench_seller", roles={ENV: ["seller"]})
    with baseline_engine(sides) as engine:
        baseline = f"Bearer {baseline_app.create_token(engine, sides.baseline_schema)}"
    return {
        "formloom": {
            "admin": f"Bearer {bearer_token(workspace, admin)}",
            "role": f"Bearer {bearer_token(workspace, seller)}",
        },
        "baseline": {"admin": baseline, "role": baseline},
    }


@contextmanager
def baseline_engine(sides: Sides) -> Iterator[Engine]:
    engine = baseline_app.make_engine(sides.baseline_url)
    try:
        yield engine
    finally:
        engine.dispose()


def create_baseline(sides: Sides) -> None:
    with baseline_engine(sides) as engine:
        baseline_app.create_table(engine, sides.baseline_schema)


def add_composite_index(sides: Sides) -> dict[str, float]:
    """Index (stage, close_date) on both sides: formloom by publishing, the baseline by DDL."""
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    publish_entity(sides.workspace, composite_index=True)
    seconds["formloom"] = time.perf_counter() - began
    began = time.perf_counter()
    columns = ", ".join(COMPOSITE_INDEX["fields"])
    statement = (
        f'CREATE INDEX "ix_{ENTITY}_{COMPOSITE_INDEX["name"]}" ON {sides.baseline_table} '
        f"({columns})"
    )
    with baseline_engine(sides) as engine, engine.begin() as conn:
        conn.exec_driver_sql(statement)
    seconds["baseline"] = time.perf_counter() - began
    return seconds


def fill_sql(table: str, *, sqlite: bool) -> str:
    """``INSERT … SELECT`` of ``:rows`` opportunities into ``table`` (ids continue)."""
    columns = "created_at, updated_at, owner_id, version, name, amount, stage, close_date"
    stage_case = " ".join(f"WHEN {i} THEN '{s}'" for i, s in enumerate(STAGES))
    if sqlite:
        return (
            "WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < :rows) "  # noqa: S608 (our own names)
            f"INSERT INTO {table} ({columns}) "
            "SELECT :ts, :ts, g % 50 + 1, 1, 'Opportunity ' || g, "
            "((g * 7919) % 10000000) / 100.0, "
            f"CASE g % 5 {stage_case} END, "
            "date('2020-01-01', '+' || ((g * 37) % 2922) || ' days') FROM n"
        )
    return (
        f"INSERT INTO {table} ({columns}) "  # noqa: S608 (our own names)
        "SELECT :ts, :ts, g % 50 + 1, 1, 'Opportunity ' || g, "
        "((g::bigint * 7919) % 10000000)::numeric / 100, "
        f"CASE g % 5 {stage_case} END, "
        "DATE '2020-01-01' + ((g * 37) % 2922) FROM generate_series(1, :rows) AS g"
    )


def _fill(conn: Connection, table: str, column_type: Any, rows: int, *, sqlite: bool) -> None:
    statement = text(fill_sql(table, sqlite=sqlite)).bindparams(
        bindparam("ts", STAMP, type_=column_type), bindparam("rows", rows)
    )
    conn.execute(statement)


def fill(sides: Sides, rows: int) -> dict[str, float]:
    """Load ``rows`` rows into both tables; seconds each side took."""
    workspace = sides.workspace
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    with workspace.begin(ENV) as conn:
        runtime = load_entity(conn, namespace=workspace.cache_key, env=ENV, name=ENTITY)
        column_type = runtime.table.c.created_at.type
        _fill(conn, sides.formloom_table, column_type, rows, sqlite=workspace.is_sqlite)
    seconds["formloom"] = time.perf_counter() - began
    began = time.perf_counter()
    table = baseline_app.opportunity_table(sides.baseline_schema)
    with baseline_engine(sides) as engine, engine.begin() as conn:
        column_type = table.c.created_at.type
        _fill(conn, sides.baseline_table, column_type, rows, sqlite=workspace.is_sqlite)
    seconds["baseline"] = time.perf_counter() - began
    return seconds


def row_counts(sides: Sides) -> dict[str, int]:
    """Rows in each side's table (soft-deleted formloom rows included: there are none)."""
    found = {}
    with sides.workspace.begin(ENV, readonly=True) as conn:
        query = f"SELECT count(*) FROM {sides.formloom_table}"  # noqa: S608 (our own names)
        found["formloom"] = int(conn.exec_driver_sql(query).scalar_one())
    with baseline_engine(sides) as engine, engine.connect() as conn:
        query = f"SELECT count(*) FROM {sides.baseline_table}"  # noqa: S608 (our own names)
        found["baseline"] = int(conn.exec_driver_sql(query).scalar_one())
    return found


def settle_both(sides: Sides) -> str:
    """No background work left to land in a timed load (see :func:`bench.backends.settle`)."""
    done = settle(sides.workspace, [ENTITY])
    with baseline_engine(sides) as engine:
        if sides.workspace.is_sqlite:
            engine.dispose()
            path = Path(engine.url.database or "")
            raw = sqlite3.connect(path, isolation_level=None)
            try:
                raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                raw.close()
        else:
            with engine.connect() as conn:
                autocommit = conn.execution_options(isolation_level="AUTOCOMMIT")
                autocommit.exec_driver_sql(f"VACUUM ANALYZE {sides.baseline_table}")
    return f"formloom: {done}; baseline: the same"


# -- what the databases do with the list queries ------------------------------------------------


@contextmanager
def _statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    found: list[tuple[str, Any]] = []

    def seen(_c: Any, _cur: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        found.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def _explain(conn: Connection, statement: str, parameters: Any, *, sqlite: bool) -> list[str]:
    if sqlite:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return [str(r[-1]) for r in rows]
    rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
    return [str(r[0]) for r in rows]


def _is_data_query(statement: str) -> bool:
    lowered = statement.lower()
    return ENTITY in lowered and "fl_" not in lowered and lowered.lstrip().startswith("select")


def list_plans(sides: Sides, stage: str = "won") -> dict[str, Any]:
    """The SQL each side runs for page 1 and page 2 of the benchmark's list, with plans."""
    workspace = sides.workspace
    sqlite = workspace.is_sqlite
    plans: dict[str, Any] = {"formloom": {}, "baseline": {}}
    with workspace.begin(ENV, readonly=True) as conn:
        runtime = load_entity(conn, namespace=workspace.cache_key, env=ENV, name=ENTITY)
        cursor = None
        for page in ("page 1", "page 2"):
            with _statements(workspace.engine) as found:
                result = list_records(
                    conn, runtime, filters=[("stage", stage)], sort=[LIST_SORT], after=cursor
                )
            cursor = result.next
            plans["formloom"][page] = [
                {"sql": sql, "plan": _explain(conn, sql, params, sqlite=sqlite)}
                for sql, params in found
                if _is_data_query(sql)
            ]
    table = baseline_app.opportunity_table(sides.baseline_schema)
    with baseline_engine(sides) as engine, engine.connect() as conn:
        after = None
        for page in ("page 1", "page 2"):
            query, count = baseline_app.list_statements(
                table, stage=stage, sort=LIST_SORT, limit=PAGE, after=after
            )
            with _statements(engine) as found:
                rows = conn.execute(query).all()
                conn.execute(count).scalar_one()
            last = rows[PAGE - 1]
            after = (getattr(last, LIST_SORT), last.id)
            plans["baseline"][page] = [
                {"sql": sql, "plan": _explain(conn, sql, params, sqlite=sqlite)}
                for sql, params in found
            ]
    return plans


def id_range(sides: Sides) -> tuple[int, int]:
    """The smallest and largest id of formloom's table (the baseline's are the same)."""
    table: Table
    with sides.workspace.begin(ENV, readonly=True) as conn:
        table = load_entity(conn, namespace=sides.workspace.cache_key, env=ENV, name=ENTITY).table
        low, high = conn.execute(select(func.min(table.c.id), func.max(table.c.id))).one()
    return int(low), int(high)

"""The baseline of the records benchmarks: a hand-written FastAPI + SQLAlchemy app.

One table, ``opportunity``, with the columns a formloom entity of the same name
has (name, amount, stage, close_date, owner_id, plus id, timestamps and a
version), a plain Pydantic model, plain SQL inserts and selects, no audit, no
metadata, no roles. It runs under the same uvicorn settings and on the same
database and connection pool settings as formloom (:func:`make_engine` copies
:mod:`formloom.platform.database`), so that the ratio formloom ÷ baseline
measures what formloom adds.

Authentication is the minimal bearer check a hand-written app would have: every
request sends ``Authorization: Bearer <token>``; the route looks up the token's
SHA-256 in ``api_token`` joined with its ``app_user`` row (one statement, on the
connection the route uses anyway) and answers 401 unless the token exists, is
neither revoked nor expired, and its user is active. :func:`create_token` makes
a user and a token for the benchmark.

Served by ``uvicorn bench.baseline_app:create_app --factory`` with
``FORMLOOM_BASELINE_URL`` (SQLAlchemy URL) and, on PostgreSQL,
``FORMLOOM_BASELINE_SCHEMA`` in the environment. Routes:

- ``POST /opportunities``: create (201).
- ``GET  /opportunities/{id}``: read one (404 when missing).
- ``GET  /opportunities?stage=won&sort=close_date&limit=50&after=<next>``: a page
  in keyset order (sort key, then id), with ``next`` and a total that is exact up
  to :data:`COUNT_BOUND` rows (the same bound formloom uses).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    Select,
    String,
    Table,
    create_engine,
    event,
    func,
    insert,
    literal,
    select,
    text,
    tuple_,
)

URL_VARIABLE = "FORMLOOM_BASELINE_URL"
SCHEMA_VARIABLE = "FORMLOOM_BASELINE_SCHEMA"
STAGES = ("prospect", "qualify", "proposal", "won", "lost")
#: Totals are exact up to this many rows (formloom's ``record_query.COUNT_BOUND``).
COUNT_BOUND = 10_000
SQLITE_BUSY_TIMEOUT_MS = 30_000

Stage = Literal["prospect", "qualify", "proposal", "won", "lost"]
SortName = Literal["close_date", "-close_date", "amount", "-amount"]
Authorization = Annotated[str | None, Header()]


def opportunity_table(schema: str | None) -> Table:
    """The baseline's records table; same column types and indexes as formloom's entity.

    Its metadata also holds the two tables of the bearer check (see :func:`auth_tables`).
    """
    metadata = MetaData()
    auth_tables(metadata, schema)
    return Table(
        "opportunity",
        metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Column("owner_id", BigInteger, nullable=True),
        Column("version", Integer, nullable=False, server_default="1"),
        Column("name", String(255), nullable=True),
        Column("amount", Numeric(18, 2), nullable=True),
        Column("stage", String(63), nullable=True),
        Column("close_date", Date, nullable=True),
        Index("ix_opportunity_stage", "stage"),
        Index("ix_opportunity_close_date", "close_date"),
        schema=schema,
    )


def auth_tables(metadata: MetaData, schema: str | None) -> tuple[Table, Table]:
    """``app_user`` and ``api_token`` (a token is stored as the SHA-256 of its secret)."""
    users = Table(
        "app_user",
        metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
        Column("login", String(100), nullable=False, unique=True),
        Column("active", Boolean, nullable=False),
        schema=schema,
    )
    prefix = f"{schema}." if schema else ""
    tokens = Table(
        "api_token",
        metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
        Column("user_id", BigInteger, ForeignKey(f"{prefix}app_user.id"), nullable=False),
        Column("token_hash", String(64), nullable=False, unique=True),
        Column("expires_at", DateTime(timezone=True), nullable=True),
        Column("revoked_at", DateTime(timezone=True), nullable=True),
        schema=schema,
    )
    return users, tokens


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(engine: Engine, schema: str | None, login: str = "bench") -> str:
    """Create an active user and a bearer token for it; the token's secret."""
    users, tokens = auth_tables(MetaData(), schema)
    secret = "bt_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        user_id = conn.execute(
            insert(users).values(login=login, active=True).returning(users.c.id)
        ).scalar_one()
        conn.execute(insert(tokens).values(user_id=user_id, token_hash=_token_hash(secret)))
    return secret


def _user_id(conn: Connection, tokens: Table, users: Table, authorization: str | None) -> int:
    """The id of the user the bearer token names (one statement); 401 unless it is valid."""
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret:
        raise HTTPException(401, "send Authorization: Bearer <token>")
    row = conn.execute(
        select(users.c.id, users.c.active, tokens.c.expires_at, tokens.c.revoked_at)
        .join(users, users.c.id == tokens.c.user_id)
        .where(tokens.c.token_hash == _token_hash(secret))
    ).first()
    if row is None or not row.active or row.revoked_at is not None:
        raise HTTPException(401, "the bearer token is not valid")
    expires_at: datetime | None = row.expires_at
    if expires_at is not None and expires_at.replace(tzinfo=expires_at.tzinfo or UTC) <= (
        datetime.now(UTC)
    ):
        raise HTTPException(401, "the bearer token has expired")
    return int(row.id)


def make_engine(url: str) -> Engine:
    """An engine with formloom's pool and connection settings (WAL and a busy timeout on SQLite).

    SQLite keeps the driver's own transaction handling (a deferred ``BEGIN`` before the
    first write), as a hand-written app would.
    """
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")

    return engine


def create_table(engine: Engine, schema: str | None) -> Table:
    """Create the schema (PostgreSQL), the table and its indexes, and the tables of the bearer
    check; returns the records table."""
    table = opportunity_table(schema)
    with engine.begin() as conn:
        if schema is not None:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        table.metadata.create_all(conn)
    return table


class OpportunityIn(BaseModel):
    """What a client sends to create an opportunity."""

    name: str = Field(min_length=1, max_length=255)
    amount: Decimal = Field(max_digits=18, decimal_places=2)
    stage: Stage
    close_date: date | None = None
    owner_id: int | None = None


class Opportunity(OpportunityIn):
    """A stored opportunity."""

    id: int
    version: int
    created_at: datetime
    updated_at: datetime


class Page(BaseModel):
    items: list[Opportunity]
    next: str | None
    total: int
    total_is_exact: bool


def _qualified(name: str, schema: str | None) -> str:
    return f"{schema}.{name}" if schema else name


def _encode_cursor(value: Any, row_id: int) -> str:
    key = str(value) if isinstance(value, Decimal | date) else value
    raw = json.dumps([key, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, column: str) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, row_id = json.loads(raw)
        parsed = date.fromisoformat(value) if column == "close_date" else Decimal(value)
        return parsed, int(row_id)
    except (ValueError, TypeError, binascii.Error, ArithmeticError):
        raise HTTPException(422, "`after` is not a cursor this API returned") from None


def list_statements(
    table: Table,
    *,
    stage: str | None,
    sort: str,
    limit: int,
    after: tuple[Any, int] | None,
) -> tuple[Select[Any], Select[Any]]:
    """The page query (``limit + 1`` rows in keyset order) and the bounded count query."""
    name = sort.lstrip("-")
    descending = sort.startswith("-")
    column, row_id = table.c[name], table.c.id
    filters = [] if stage is None else [table.c.stage == stage]
    query = select(table).where(*filters)
    if after is not None:
        value, last_id = after
        key = tuple_(column, row_id)
        bound = tuple_(literal(value, column.type), literal(last_id, row_id.type))
        query = query.where(key < bound if descending else key > bound)
    order = [column.desc(), row_id.desc()] if descending else [column.asc(), row_id.asc()]
    matching = select(literal(1)).select_from(table).where(*filters).limit(COUNT_BOUND + 1)
    count = select(func.count()).select_from(matching.subquery())
    return query.order_by(*order).limit(limit + 1), count


def create_app() -> FastAPI:
    """The baseline app, configured from ``FORMLOOM_BASELINE_URL`` and ``..._SCHEMA``."""
    engine = make_engine(os.environ[URL_VARIABLE])
    table = opportunity_table(os.environ.get(SCHEMA_VARIABLE) or None)
    users = table.metadata.tables[_qualified("app_user", table.schema)]
    tokens = table.metadata.tables[_qualified("api_token", table.schema)]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(title="baseline", lifespan=lifespan)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/opportunities", status_code=201, response_model=Opportunity)
    def create_opportunity(body: OpportunityIn, authorization: Authorization = None) -> Any:
        now = datetime.now(UTC)
        with engine.begin() as conn:
            _user_id(conn, tokens, users, authorization)
            row = conn.execute(
                insert(table)
                .values(**body.model_dump(), created_at=now, updated_at=now, version=1)
                .returning(*table.c)
            ).one()
        return row._mapping

    @app.get("/opportunities/{opportunity_id}", response_model=Opportunity)
    def get_opportunity(opportunity_id: int, authorization: Authorization = None) -> Any:
        with engine.connect() as conn:
            _user_id(conn, tokens, users, authorization)
            row = conn.execute(select(table).where(table.c.id == opportunity_id)).first()
        if row is None:
            raise HTTPException(404, f"opportunity {opportunity_id} does not exist")
        return row._mapping

    @app.get("/opportunities", response_model=Page)
    def list_opportunities(
        stage: Stage | None = None,
        sort: SortName = "close_date",
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        after: str | None = None,
        authorization: Authorization = None,
    ) -> Any:
        name = sort.lstrip("-")
        start = _decode_cursor(after, name) if after is not None else None
        query, count = list_statements(table, stage=stage, sort=sort, limit=limit, after=start)
        with engine.connect() as conn:
            _user_id(conn, tokens, users, authorization)
            rows = conn.execute(query).all()
            total = int(conn.execute(count).scalar_one())
        more = len(rows) > limit
        page = [r._mapping for r in rows[:limit]]
        last = page[-1] if more else None
        return {
            "items": page,
            "next": _encode_cursor(last[name], last["id"]) if last is not None else None,
            "total": min(total, COUNT_BOUND),
            "total_is_exact": total <= COUNT_BOUND,
        }

    return app

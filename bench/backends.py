"""A fresh, throw-away formloom workspace per database backend.

SQLite lives in a temporary folder (removed afterwards); PostgreSQL gets a
unique namespace (schemas ``b<random>`` and ``b<random>_<env>``), dropped
afterwards exactly like the test fixtures do (see ``tests/conftest.py``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from formloom.platform.database import Workspace
from formloom.platform.environments import PRODUCTION, initialise_workspace
from formloom.platform.settings import Settings, normalise_url

BACKENDS = ("sqlite", "postgresql")
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    """The PostgreSQL server to benchmark on (``FORMLOOM_BENCH_POSTGRES_URL``, then the tests')."""
    url = (
        os.environ.get("FORMLOOM_BENCH_POSTGRES_URL")
        or os.environ.get("FORMLOOM_TEST_POSTGRES_URL")
        or DEFAULT_PG_URL
    )
    return normalise_url(url)


def postgres_problem(url: str) -> str | None:
    """Why PostgreSQL at ``url`` cannot be used, or None when it can."""
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


def drop_namespace(url: str, namespace: str) -> None:
    """Drop the platform schema and every environment schema of ``namespace``."""
    engine = create_engine(url)
    with engine.begin() as conn:
        schemas = conn.execute(
            text(
                "SELECT schema_name FROM information_schema.schemata "
                "WHERE schema_name = :ns OR schema_name LIKE :prefix"
            ),
            {"ns": namespace, "prefix": namespace + "\\_%"},
        ).scalars()
        for schema in list(schemas):
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@contextmanager
def fresh_workspace(backend: str, *, pg_url: str) -> Iterator[Workspace]:
    """An initialised workspace (with `production`) that disappears afterwards."""
    namespace = "b" + uuid.uuid4().hex[:12]
    with tempfile.TemporaryDirectory(prefix="formloom-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'formloom.db'}" if backend == "sqlite" else pg_url
        settings = Settings(data_dir=Path(folder), database_url=url, namespace=namespace)
        workspace = Workspace(settings)
        try:
            initialise_workspace(workspace)
            yield workspace
        finally:
            workspace.dispose()
            if backend == "postgresql":
                drop_namespace(url, namespace)


def settle(workspace: Workspace, tables: list[str]) -> str:
    """Leave no background work that could land inside a timed step.

    PostgreSQL: ``VACUUM ANALYZE`` the freshly filled tables (otherwise autovacuum
    starts on them and its lock makes the next ``ALTER TABLE`` wait until it is
    cancelled), then ``CHECKPOINT``. SQLite: checkpoint and truncate the WAL of the
    environment file (otherwise the first commit after the fill pays for it).
    Returns what was done, for the log.
    """
    schema = workspace.env_schema(PRODUCTION)
    if workspace.is_sqlite:
        path = workspace.env_file(PRODUCTION)
        wal = path.with_name(path.name + "-wal")
        size = wal.stat().st_size if wal.exists() else 0
        workspace.dispose()  # closing the last connection checkpoints too
        raw = sqlite3.connect(path, isolation_level=None)
        try:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
        return f"checkpointed a {size / 2**20:.0f} MiB WAL into {path.name}"
    with workspace.engine.connect() as conn:
        autocommit = conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in tables:
            autocommit.exec_driver_sql(f'VACUUM ANALYZE "{schema}"."{table}"')
        # CHECKPOINT needs a superuser (or pg_checkpoint); settling is best effort.
        with contextlib.suppress(Exception):
            autocommit.exec_driver_sql("CHECKPOINT")
    return f"VACUUM ANALYZE on {len(tables)} tables, then CHECKPOINT"

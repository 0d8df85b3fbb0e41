"""Database access: one engine per workspace, one namespace per environment.

PostgreSQL: the platform tables live in schema ``<namespace>``, each
environment in schema ``<namespace>_<env>``. SQLite: the platform tables live in
the main file, each environment in its own file, attached to the connection as
``env_<env>`` for the duration of a transaction. The same SQLAlchemy tables serve
both through ``schema_translate_map`` (placeholders ``platform`` and ``env``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from formloom.platform.errors import NotFound
from formloom.platform.settings import Settings
from formloom.platform.tables import ENV, PLATFORM

SQLITE_BUSY_TIMEOUT_MS = 30_000


class Workspace:
    """A formloom workspace: the database engine and the naming of its namespaces."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = make_url(settings.database_url)
        self.dialect = self.url.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database `{self.dialect}`: use SQLite or PostgreSQL")
        if self.is_sqlite:
            database = self.url.database
            if not database or database == ":memory:":
                raise ValueError("SQLite needs a database file (environments are separate files)")
            self.sqlite_path = Path(database).resolve()
            self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = _create_engine(settings.database_url, sqlite=self.is_sqlite)
        #: SQLite: the turn of this process's writing transactions (see :meth:`begin`);
        #: reentrant, so a thread that nests transactions meets only SQLite's own locking.
        self._write_turn = threading.RLock()
        self._env_files: dict[str, Path] = {}
        #: Tells this workspace's cached entities apart from any other's (database + namespace);
        #: computed once: every request uses it.
        self.cache_key = f"{self.url.render_as_string(hide_password=True)}#{settings.namespace}"

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def platform_schema(self) -> str | None:
        return None if self.is_sqlite else self.settings.namespace

    def env_schema(self, env: str) -> str:
        """The schema name an environment's tables are qualified with."""
        if self.is_sqlite:
            return f"env_{env}"
        return f"{self.settings.namespace}_{env}"

    def env_file(self, env: str) -> Path:
        """The SQLite file holding an environment."""
        found = self._env_files.get(env)
        if found is None:
            found = self.sqlite_path.with_name(f"{self.sqlite_path.stem}.env.{env}.sqlite")
            self._env_files[env] = found
        return found

    def env_files_dir(self, env: str) -> Path:
        """Where an environment's uploaded files live (removed with the environment)."""
        return self.settings.data_dir / "files" / env

    def translate_map(self, env: str | None) -> dict[str | None, str | None]:
        mapping: dict[str | None, str | None] = {PLATFORM: self.platform_schema}
        if env is not None:
            mapping[ENV] = self.env_schema(env)
        return mapping

    @contextmanager
    def begin(
        self, env: str | None = None, *, readonly: bool = False, create: bool = False
    ) -> Iterator[Connection]:
        """A connection in a transaction; ``env`` makes that environment's tables reachable.

        On SQLite a writing transaction starts with ``BEGIN IMMEDIATE`` (one writer at
        a time, no lock-upgrade deadlocks); ``readonly`` uses a deferred ``BEGIN``.
        On SQLite an environment whose file does not exist is :class:`NotFound`
        unless ``create`` (only environment creation passes it).

        On SQLite the writing transactions of this process also take turns on an
        in-process lock, from ``BEGIN IMMEDIATE`` to the commit: a writer waiting for
        another one of the same process then starts the moment it commits, instead of
        polling in SQLite's busy handler, which sleeps in steps of up to 100 ms (under
        eight concurrent creates the slowest took about a second). The database still
        decides between processes; a writer that waited :data:`SQLITE_BUSY_TIMEOUT_MS`
        for its turn goes on to ``BEGIN IMMEDIATE`` and SQLite's own timeout.
        """
        with self.engine.connect() as conn:
            if self.is_sqlite:
                self._attach(conn, env, create=create)
            conn.execution_options(
                schema_translate_map=self.translate_map(env),
                formloom_readonly=readonly,
            )
            with self._writer_turn(readonly), conn.begin():
                yield conn

    @contextmanager
    def _writer_turn(self, readonly: bool) -> Iterator[None]:
        """This process's turn to write to SQLite (see :meth:`begin`); nothing otherwise."""
        turn = self._write_turn if self.is_sqlite and not readonly else None
        took = turn is not None and turn.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            yield
        finally:
            if took:
                assert turn is not None
                turn.release()

    def _attach(self, conn: Connection, env: str | None, *, create: bool) -> None:
        """Attach the environment's file (outside any transaction, as SQLite requires).

        Other environments' files are detached first (a write transaction locks every
        attached file); a transaction without an environment leaves them attached, so
        that switching between platform and environment work costs nothing.
        """
        if env is None:
            return
        path = self.env_file(env)
        current = _inode(path)
        if current < 0 and not create:
            raise NotFound(
                f"environment `{env}` does not exist; list them with `formloom env list` "
                "or GET /api/environments"
            )
        raw = conn.connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)
        alias = self.env_schema(env)
        inodes: dict[str, int] = conn.connection.info.setdefault("formloom_attached", {})
        if inodes.get(alias) == current and len(inodes) == 1:
            return
        # Detach the others, and this one too if its file was replaced (dropped and recreated).
        attached = {row[1] for row in raw.execute("PRAGMA database_list")} - {"main", "temp"}
        for other in attached:
            if other != alias or inodes.get(alias) != current:
                raw.execute(f'DETACH DATABASE "{other}"')
                inodes.pop(other, None)
        if alias not in inodes:
            raw.execute(f'ATTACH DATABASE ? AS "{alias}"', (str(path),))
            raw.execute(f'PRAGMA "{alias}".journal_mode=WAL')
            inodes[alias] = _inode(path)

    def ensure_platform_namespace(self) -> None:
        """Create the PostgreSQL schema of the platform tables (SQLite: nothing to do)."""
        if not self.is_sqlite:
            with self.engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.settings.namespace}"'))

    def dispose(self) -> None:
        self.engine.dispose()


def _inode(path: Path) -> int:
    """The inode of the file at ``path`` (which tells a recreated file apart), -1 if none."""
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return -1


def _create_engine(url: str, *, sqlite: bool) -> Engine:
    if not sqlite:
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # The pysqlite recipe: let SQLAlchemy (not the driver) emit BEGIN, so DDL is
        # transactional and rolls back with everything else.
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get("formloom_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine

"""Environments: production and sandboxes, each its own physical namespace.

PostgreSQL: a schema per environment, created and registered in one
transaction. SQLite: a file per environment; the file is created first and the
registry row written last, so a crash leaves at most an unregistered file,
which the next create of that name replaces.
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    bindparam,
    delete,
    exists,
    insert,
    select,
    text,
)

from formloom.engine.errors import Issue
from formloom.engine.names import env_name_problem
from formloom.platform import credentials, role_assignments
from formloom.platform.database import Workspace
from formloom.platform.errors import Conflict, Invalid, NotFound
from formloom.platform.migrate import upgrade_platform
from formloom.platform.tables import env_metadata, environment

PRODUCTION = "production"


@dataclass(frozen=True)
class EnvironmentInfo:
    name: str
    created_at: datetime
    description: str

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "description": self.description,
        }


def initialise_workspace(workspace: Workspace) -> None:
    """Migrate the platform tables, make sure `production` exists, upgrade every environment.

    Idempotent; environments created before a new environment table was added get it here.
    """
    upgrade_platform(workspace)
    if not environment_exists(workspace, PRODUCTION):
        create_environment(workspace, PRODUCTION, description="Production")
    for info in list_environments(workspace):
        upgrade_environment(workspace, info.name)


def upgrade_environment(workspace: Workspace, name: str) -> None:
    """Create the environment tables (``env_metadata``) the environment does not have yet.

    ``checkfirst`` looks each table up in the environment's own schema or attached
    file (SQLAlchemy resolves the ``env`` placeholder through ``schema_translate_map``),
    so existing tables are left alone. On SQLite, decimal columns of entity tables made
    before exact decimals are converted once
    (:func:`~formloom.platform.schema_sync.upgrade_decimal_columns`).
    """
    from formloom.platform.schema_sync import upgrade_decimal_columns  # it needs this module

    with workspace.begin(name, create=True) as conn:
        env_metadata.create_all(conn, checkfirst=True)
    upgrade_decimal_columns(workspace, name)


def list_environments(workspace: Workspace) -> list[EnvironmentInfo]:
    with workspace.begin(readonly=True) as conn:
        rows = conn.execute(select(environment).order_by(environment.c.name)).all()
    return [EnvironmentInfo(r.name, _aware(r.created_at), r.description) for r in rows]


def environment_exists(workspace: Workspace, name: str) -> bool:
    with workspace.begin(readonly=True) as conn:
        found = conn.execute(select(environment.c.name).where(environment.c.name == name))
        return found.first() is not None


def require_environment(workspace: Workspace, name: str) -> None:
    """Raise :class:`NotFound` naming the environment unless it exists."""
    if not environment_exists(workspace, name):
        raise environment_not_found(name)


def require_environment_in(conn: Connection, name: str) -> None:
    """Like :func:`require_environment`, inside a transaction the caller already holds."""
    found = conn.execute(_environment_query(), {"env": name}).first()
    if found is None:
        raise environment_not_found(name)


@functools.cache
def _environment_query() -> Select[tuple[str]]:
    """The registry row of the environment named by the bound parameter ``env`` (built once)."""
    return select(environment.c.name).where(
        environment.c.name == bindparam("env", type_=environment.c.name.type)
    )


def exists_column() -> ColumnElement[bool]:
    """Whether the environment named by the bound parameter ``env`` exists (a column to
    select with other things)."""
    named = environment.c.name == bindparam("env", type_=environment.c.name.type)
    return exists().where(named).label("environment_exists")


def environment_not_found(name: str) -> NotFound:
    """The error for an environment that does not exist."""
    return NotFound(
        f"environment `{name}` does not exist; list them with `formloom env list` "
        "or GET /api/environments"
    )


def create_environment(
    workspace: Workspace, name: str, *, description: str = ""
) -> EnvironmentInfo:
    problem = env_name_problem(name)
    if problem:
        raise Invalid(problem, issues=[Issue("/name", "invalid_name", problem)])
    if environment_exists(workspace, name):
        raise Conflict(f"environment `{name}` already exists")
    created_at = datetime.now(UTC)
    row = {"name": name, "created_at": created_at, "description": description}
    if workspace.is_sqlite:
        _remove_files(workspace, name)
        try:
            with workspace.begin(name, create=True) as conn:
                env_metadata.create_all(conn)
            with workspace.begin() as conn:
                conn.execute(insert(environment).values(row))
        except Exception:
            workspace.dispose()
            _remove_files(workspace, name)
            raise
    else:
        with workspace.begin(name, create=True) as conn:
            conn.execute(text(f'CREATE SCHEMA "{workspace.env_schema(name)}"'))
            env_metadata.create_all(conn)
            conn.execute(insert(environment).values(row))
    return EnvironmentInfo(name, created_at, description)


def drop_environment(workspace: Workspace, name: str) -> None:
    """Drop an environment with its data, its role assignments and the credentials bound to it
    (a new environment of the same name starts with none of them)."""
    if name == PRODUCTION:
        raise Conflict("the `production` environment cannot be dropped")
    require_environment(workspace, name)
    if workspace.is_sqlite:
        with workspace.begin() as conn:
            conn.execute(delete(environment).where(environment.c.name == name))
            _forget_identity(conn, name)
        workspace.dispose()
        _remove_files(workspace, name)
    else:
        with workspace.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{workspace.env_schema(name)}" CASCADE'))
            conn.execute(delete(environment).where(environment.c.name == name))
            _forget_identity(conn, name)
    shutil.rmtree(workspace.env_files_dir(name), ignore_errors=True)


def _forget_identity(conn: Connection, name: str) -> None:
    role_assignments.forget_environment(conn, name)
    credentials.revoke_for_environment(conn, name, now=datetime.now(UTC))


def _remove_files(workspace: Workspace, name: str) -> None:
    base = workspace.env_file(name)
    for suffix in ("", "-wal", "-shm", "-journal"):
        base.with_name(base.name + suffix).unlink(missing_ok=True)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

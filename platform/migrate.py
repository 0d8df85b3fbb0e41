"""Apply the platform's Alembic migrations (workspace-wide tables).

Alembic is imported only when there is something to migrate: a workspace already
at the newest revision, which is how a server usually starts, is recognised by
comparing its version table with the revisions shipped in ``migrations/versions``.
Alembic (with Mako) takes about 10 MiB that a running server never needs again.
"""

from __future__ import annotations

import ast
import functools
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.exc import DBAPIError

from formloom.platform.database import Workspace

if TYPE_CHECKING:
    from alembic.config import Config

#: Alembic's version table, as :func:`upgrade_platform` reads it.
_VERSION_TABLE = "alembic_version"


def alembic_config(workspace: Workspace) -> Config:
    from alembic.config import Config

    config = Config()
    location = resources.files("formloom.migrations")
    config.set_main_option("script_location", str(location))
    config.attributes["platform_schema"] = workspace.platform_schema
    return config


def upgrade_platform(workspace: Workspace) -> None:
    """Bring the platform tables to the newest revision (idempotent)."""
    workspace.ensure_platform_namespace()
    head = head_revision()
    if head is not None and current_revisions(workspace) == {head}:
        return
    from alembic import command

    config = alembic_config(workspace)
    with workspace.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


@functools.cache
def head_revision() -> str | None:
    """The newest revision in ``migrations/versions``: the one that no other revision names as
    its ``down_revision``; None when that is not one revision (Alembic then decides)."""
    revisions: dict[str, tuple[str, ...]] = {}
    for path in resources.files("formloom.migrations").joinpath("versions").iterdir():
        if not path.name.endswith(".py") or path.name.startswith("__"):
            continue
        assigned = _assignments(path.read_text(encoding="utf-8"))
        revision, down = assigned.get("revision"), assigned.get("down_revision")
        if not isinstance(revision, str):
            return None
        if isinstance(down, str):
            revisions[revision] = (down,)
        elif isinstance(down, tuple | list):
            revisions[revision] = tuple(str(d) for d in down)
        else:
            revisions[revision] = ()
    named_down = {down for downs in revisions.values() for down in downs}
    heads = set(revisions) - named_down
    return heads.pop() if len(heads) == 1 else None


def current_revisions(workspace: Workspace) -> set[str]:
    """The revisions the platform tables are at (empty before the first migration)."""
    versions = Table(
        _VERSION_TABLE,
        MetaData(),
        Column("version_num", String(32)),
        schema=workspace.platform_schema,
    )
    try:
        with workspace.begin(readonly=True) as conn:
            return {str(v) for v in conn.execute(select(versions.c.version_num)).scalars()}
    except DBAPIError:  # no version table yet
        return set()


def _assignments(source: str) -> dict[str, object]:
    """The module-level ``name = <literal>`` assignments of a migration file."""
    found: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and node.value is not None:
                    try:
                        found[target.id] = ast.literal_eval(node.value)
                    except (ValueError, TypeError, SyntaxError):
                        continue
    return found

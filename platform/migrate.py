"""Apply the platform's Alembic migrations (workspace-wide tables)."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config

from formloom.platform.database import Workspace


def alembic_config(workspace: Workspace) -> Config:
    config = Config()
    location = resources.files("formloom.migrations")
    config.set_main_option("script_location", str(location))
    config.attributes["platform_schema"] = workspace.platform_schema
    return config


def upgrade_platform(workspace: Workspace) -> None:
    """Bring the platform tables to the newest revision (idempotent)."""
    workspace.ensure_platform_namespace()
    config = alembic_config(workspace)
    with workspace.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")

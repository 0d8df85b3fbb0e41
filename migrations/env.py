"""Alembic environment for the platform's own (workspace-wide) tables.

Run programmatically by :func:`formloom.platform.migrate.upgrade_platform`, which
passes an open connection and the platform schema in ``config.attributes``.
"""

from __future__ import annotations

from alembic import context

from formloom.platform.tables import PLATFORM, platform_metadata

config = context.config
connection = config.attributes["connection"]
schema = config.attributes.get("platform_schema")

context.configure(
    connection=connection,
    target_metadata=platform_metadata,
    version_table_schema=schema,
    include_schemas=False,
    transactional_ddl=True,
)
connection.execution_options(schema_translate_map={PLATFORM: schema})

with context.begin_transaction():
    context.run_migrations()

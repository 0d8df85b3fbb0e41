"""The environment registry.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema = context.config.attributes.get("platform_schema")
    op.create_table(
        "fl_environment",
        sa.Column("name", sa.String(31), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("description", sa.String(500), nullable=False, server_default=""),
        schema=schema,
    )


def downgrade() -> None:
    schema = context.config.attributes.get("platform_schema")
    op.drop_table("fl_environment", schema=schema)

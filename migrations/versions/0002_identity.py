"""Identity: users, teams, role assignments, credentials, login attempts, security audit.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ref(schema: str | None, column: str) -> str:
    """A foreign key target in the platform schema (none on SQLite)."""
    return f"{schema}.{column}" if schema else column


def upgrade() -> None:
    schema = context.config.attributes.get("platform_schema")
    at = sa.DateTime(timezone=True)
    op.create_table(
        "fl_user",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("login", sa.String(100), nullable=False, unique=True),
        sa.Column("display_name_en", sa.String(100), nullable=False, server_default=""),
        sa.Column("display_name_zh", sa.String(100), nullable=False, server_default=""),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("mobile", sa.String(20), nullable=True),
        sa.Column(
            "manager_id", sa.BigInteger, sa.ForeignKey(_ref(schema, "fl_user.id")), nullable=True
        ),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("language", sa.String(8), nullable=False, server_default="en"),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("password_changed_at", at, nullable=True),
        sa.Column("created_at", at, nullable=False),
        sa.Column("updated_at", at, nullable=False),
        schema=schema,
    )
    op.create_table(
        "fl_team",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("label_en", sa.String(100), nullable=False),
        sa.Column("label_zh", sa.String(100), nullable=False),
        sa.Column(
            "parent_id", sa.BigInteger, sa.ForeignKey(_ref(schema, "fl_team.id")), nullable=True
        ),
        sa.Column(
            "leader_id", sa.BigInteger, sa.ForeignKey(_ref(schema, "fl_user.id")), nullable=True
        ),
        sa.Column("created_at", at, nullable=False),
        sa.Column("updated_at", at, nullable=False),
        schema=schema,
    )
    op.create_table(
        "fl_team_member",
        sa.Column(
            "team_id",
            sa.BigInteger,
            sa.ForeignKey(_ref(schema, "fl_team.id"), ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id",
            sa.BigInteger,
            sa.ForeignKey(_ref(schema, "fl_user.id"), ondelete="CASCADE"),
            primary_key=True,
        ),
        schema=schema,
    )
    op.create_index("ix_fl_team_member_user", "fl_team_member", ["user_id"], schema=schema)
    op.create_table(
        "fl_user_role",
        sa.Column(
            "user_id",
            sa.BigInteger,
            sa.ForeignKey(_ref(schema, "fl_user.id"), ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("env", sa.String(31), primary_key=True),
        sa.Column("role", sa.String(63), primary_key=True),
        schema=schema,
    )
    op.create_index("ix_fl_user_role_env", "fl_user_role", ["env", "role"], schema=schema)
    op.create_table(
        "fl_credential",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column(
            "user_id", sa.BigInteger, sa.ForeignKey(_ref(schema, "fl_user.id")), nullable=False
        ),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("name", sa.String(100), nullable=False, server_default=""),
        sa.Column("env", sa.String(31), nullable=True),
        sa.Column("csrf_token", sa.String(64), nullable=True),
        sa.Column("created_at", at, nullable=False),
        sa.Column("expires_at", at, nullable=True),
        sa.Column("last_used_at", at, nullable=True),
        sa.Column("revoked_at", at, nullable=True),
        sa.Column("created_ip", sa.String(45), nullable=True),
        schema=schema,
    )
    op.create_index("ix_fl_credential_user", "fl_credential", ["user_id", "kind"], schema=schema)
    op.create_table(
        "fl_login_attempt",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("login", sa.String(100), nullable=False),
        sa.Column("ip", sa.String(45), nullable=True),
        sa.Column("at", at, nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        schema=schema,
    )
    op.create_index("ix_fl_login_attempt_login", "fl_login_attempt", ["login", "at"], schema=schema)
    op.create_index("ix_fl_login_attempt_ip", "fl_login_attempt", ["ip", "at"], schema=schema)
    op.create_index("ix_fl_login_attempt_at", "fl_login_attempt", ["at"], schema=schema)
    op.create_table(
        "fl_security_audit",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", at, nullable=False),
        sa.Column("actor_id", sa.BigInteger, nullable=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target", sa.String(200), nullable=False, server_default=""),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("ip", sa.String(45), nullable=True),
        schema=schema,
    )
    op.create_index(
        "ix_fl_security_audit_action", "fl_security_audit", ["action", "id"], schema=schema
    )
    op.create_index(
        "ix_fl_security_audit_actor", "fl_security_audit", ["actor_id", "id"], schema=schema
    )
    op.create_index("ix_fl_security_audit_at", "fl_security_audit", ["at"], schema=schema)


def downgrade() -> None:
    schema = context.config.attributes.get("platform_schema")
    for table in (
        "fl_security_audit",
        "fl_login_attempt",
        "fl_credential",
        "fl_user_role",
        "fl_team_member",
        "fl_team",
        "fl_user",
    ):
        op.drop_table(table, schema=schema)

"""The platform's own tables.

Tables with ``schema=PLATFORM`` live in the workspace-wide platform namespace
(migrated by Alembic from ``migrations/``); tables with ``schema=ENV`` live
inside every environment's namespace. Both placeholders are resolved per
connection through ``schema_translate_map`` (see :mod:`formloom.platform.database`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect

PLATFORM = "platform"
ENV = "env"

#: An auto-incrementing 64-bit key (SQLite needs INTEGER for its rowid alias).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp stored in UTC; SQLite's naive values come back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware value")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


platform_metadata = MetaData()
env_metadata = MetaData()

environment = Table(
    "fl_environment",
    platform_metadata,
    Column("name", String(31), primary_key=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("description", String(500), nullable=False, server_default=""),
    schema=PLATFORM,
)

# -- identity (workspace-wide; see formloom.platform.users, teams, credentials) ---------------

#: People who log in. ``login`` is stored case-folded; users are deactivated, never deleted,
#: so that audit entries and record owners keep pointing at them.
user = Table(
    "fl_user",
    platform_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("login", String(100), nullable=False, unique=True),
    Column("display_name_en", String(100), nullable=False, server_default=""),
    Column("display_name_zh", String(100), nullable=False, server_default=""),
    Column("email", String(254), nullable=True),
    Column("mobile", String(20), nullable=True),
    Column("manager_id", BigInteger, ForeignKey("platform.fl_user.id"), nullable=True),
    Column("active", Boolean, nullable=False),
    Column("admin", Boolean, nullable=False),
    Column("language", String(8), nullable=False, server_default="en"),
    Column("password_hash", String(255), nullable=True),
    Column("password_changed_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    schema=PLATFORM,
)

#: Teams form a tree (``parent_id``); ``name`` is a slug (an API name).
team = Table(
    "fl_team",
    platform_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(63), nullable=False, unique=True),
    Column("label_en", String(100), nullable=False),
    Column("label_zh", String(100), nullable=False),
    Column("parent_id", BigInteger, ForeignKey("platform.fl_team.id"), nullable=True),
    Column("leader_id", BigInteger, ForeignKey("platform.fl_user.id"), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    schema=PLATFORM,
)

team_member = Table(
    "fl_team_member",
    platform_metadata,
    Column(
        "team_id",
        BigInteger,
        ForeignKey("platform.fl_team.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "user_id",
        BigInteger,
        ForeignKey("platform.fl_user.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Index("ix_fl_team_member_user", "user_id"),
    schema=PLATFORM,
)

#: Role assignments: role *names* per environment (the role documents live in each environment).
user_role = Table(
    "fl_user_role",
    platform_metadata,
    Column(
        "user_id",
        BigInteger,
        ForeignKey("platform.fl_user.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("env", String(31), primary_key=True),
    Column("role", String(63), primary_key=True),
    Index("ix_fl_user_role_env", "env", "role"),
    schema=PLATFORM,
)

#: Browser sessions, login tokens and API keys. Only a SHA-256 of each secret is kept;
#: ``prefix`` is a short, non-secret part of it for people to tell keys apart.
credential = Table(
    "fl_credential",
    platform_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),
    Column("user_id", BigInteger, ForeignKey("platform.fl_user.id"), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("name", String(100), nullable=False, server_default=""),
    Column("env", String(31), nullable=True),
    Column("csrf_token", String(64), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("last_used_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("created_ip", String(45), nullable=True),
    Index("ix_fl_credential_user", "user_id", "kind"),
    schema=PLATFORM,
)

#: Login attempts, for rate limiting across processes. ``outcome``: success, failure, or
#: reset (an administrator unlocked the account). Rows older than a day are pruned.
login_attempt = Table(
    "fl_login_attempt",
    platform_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("login", String(100), nullable=False),
    Column("ip", String(45), nullable=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("outcome", String(8), nullable=False),
    Index("ix_fl_login_attempt_login", "login", "at"),
    Index("ix_fl_login_attempt_ip", "ip", "at"),
    Index("ix_fl_login_attempt_at", "at"),
    schema=PLATFORM,
)

#: The security audit log (append-only): logins, credentials, users, roles, teams.
security_audit = Table(
    "fl_security_audit",
    platform_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor_id", BigInteger, nullable=True),
    Column("action", String(40), nullable=False),
    Column("target", String(200), nullable=False, server_default=""),
    Column("details", JSON, nullable=False),
    Column("ip", String(45), nullable=True),
    Index("ix_fl_security_audit_action", "action", "id"),
    Index("ix_fl_security_audit_actor", "actor_id", "id"),
    Index("ix_fl_security_audit_at", "at"),
    schema=PLATFORM,
)

meta_document = Table(
    "fl_meta_document",
    env_metadata,
    Column("kind", String(32), primary_key=True),
    Column("name", String(63), primary_key=True),
    Column("draft", JSON, nullable=True),
    Column("draft_updated_at", UtcDateTime(), nullable=True),
    Column("published_version", Integer, nullable=True),
    Column("status", String(16), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    schema=ENV,
)

meta_version = Table(
    "fl_meta_version",
    env_metadata,
    Column("kind", String(32), primary_key=True),
    Column("name", String(63), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("body", JSON, nullable=False),
    Column("action", String(16), nullable=False),
    Column("comment", String(500), nullable=False, server_default=""),
    Column("published_at", UtcDateTime(), nullable=False),
    Column("published_by", String(100), nullable=True),
    schema=ENV,
)

job = Table(
    "fl_job",
    env_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job_type", String(63), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("run_at", UtcDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False, server_default="8"),
    Column("repeat_seconds", Integer, nullable=True),
    Column("locked_by", String(100), nullable=True),
    Column("locked_until", UtcDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("progress", JSON, nullable=True),
    Column("dedupe_key", String(200), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Index("ix_fl_job_due", "status", "run_at"),
    Index("uq_fl_job_dedupe", "dedupe_key", unique=True),
    schema=ENV,
)

audit = Table(
    "fl_audit",
    env_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("entity", String(63), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("action", String(16), nullable=False),
    Column("actor", BigInteger, nullable=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("changes", JSON, nullable=False),
    Column("cause", JSON, nullable=True),
    Index("ix_fl_audit_record", "entity", "record_id", "id"),
    schema=ENV,
)

#: The last number given by each auto-number field, per period ('' when it never resets).
counter = Table(
    "fl_counter",
    env_metadata,
    Column("entity", String(63), primary_key=True),
    Column("field", String(63), primary_key=True),
    Column("period", String(16), primary_key=True),
    Column("value", BigInteger, nullable=False),
    schema=ENV,
)

#: Imports of CSV/XLSX files into an entity (see ``formloom.platform.record_import``).
#: ``last_row`` is the last file row whose batch has committed: a rerun goes on after it.
record_import = Table(
    "fl_import",
    env_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("entity", String(63), nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("file_path", String(500), nullable=False),
    Column("file_format", String(8), nullable=False),
    Column("file_bytes", BigInteger, nullable=False),
    Column("options", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("job_id", BigInteger, nullable=True),
    Column("last_row", Integer, nullable=False, server_default="1"),
    Column("summary", JSON, nullable=True),
    Column("lang", String(8), nullable=False),
    Column("actor", BigInteger, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Index("ix_fl_import_entity", "entity", "id"),
    schema=ENV,
)

#: Uploaded files (see ``formloom.platform.files``); the bytes live under the data folder at
#: ``files/<env>/<id[:2]>/<id>``. ``content_type`` is sniffed from the bytes, not declared.
uploaded_file = Table(
    "fl_file",
    env_metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content_type", String(127), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", BigInteger, nullable=True),
    schema=ENV,
)

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
    Column,
    DateTime,
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

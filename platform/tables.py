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
    text,
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

# -- approval flows (see formloom.platform.flow_runtime) ----------------------------------------
# Every action on an instance is a conditional UPDATE on these rows (``rev`` and ``status``
# in the WHERE clause, the row count checked), so two approvers can never both win.

#: Running and finished approval instances (审批实例). An instance is pinned to the exact flow
#: version it started with (``flow`` + ``flow_version``, a row of ``fl_meta_version``).
#: ``round`` counts submissions (a return bumps it: approvals of earlier rounds do not count
#: for the repeated-approver policy). ``choices``: approvers chosen by the submitter and by
#: previous approvers, ``{"submitter": {node: [ids]}, "previous": {node: [ids]}}``.
approval_instance = Table(
    "fl_approval_instance",
    env_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("flow", String(63), nullable=False),
    Column("flow_version", Integer, nullable=False),
    Column("entity", String(63), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("submitter_id", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("round", Integer, nullable=False, server_default="1"),
    Column("choices", JSON, nullable=False),
    Column("decided_at", UtcDateTime(), nullable=True),
    Column("rev", Integer, nullable=False, server_default="1"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    # At most one running instance per record; also the record lock's lookup.
    Index(
        "uq_fl_approval_instance_running",
        "entity",
        "record_id",
        unique=True,
        sqlite_where=text("status = 'running'"),
        postgresql_where=text("status = 'running'"),
    ),
    Index("ix_fl_approval_instance_record", "entity", "record_id", "id"),
    Index("ix_fl_approval_instance_submitter", "submitter_id", "id"),
    schema=ENV,
)

#: Where an instance stands: one token per active node (an approver or handler step waiting
#: for people, the submitter's step after a return) and per branch waiting at a parallel join.
#: ``previous_node``: the person step completed just before (the consecutive-approver policy).
approval_token = Table(
    "fl_approval_token",
    env_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("instance_id", BigInteger, nullable=False),
    Column("node_id", String(63), nullable=False),
    Column("status", String(16), nullable=False),
    Column("previous_node", String(63), nullable=True),
    Column("round", Integer, nullable=False),
    Column("rev", Integer, nullable=False, server_default="1"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Index("ix_fl_approval_token_instance", "instance_id", "status"),
    schema=ENV,
)

#: People's work on a step: approve, handle (办理), resubmit (the submitter after a return)
#: or a copy (cc). A step's tasks form ``slot`` chains ordered by ``seq``: one chain per person
#: (countersign, or-sign), or one chain for the whole step (sequential); add-approver inserts
#: into a chain (before/after) or adds a chain (alongside). ``auto``: why the platform decided
#: the task (e.g. ``repeated_approver``, ``timeout``); None for people's decisions.
approval_task = Table(
    "fl_approval_task",
    env_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("instance_id", BigInteger, nullable=False),
    Column("token_id", BigInteger, nullable=True),
    Column("node_id", String(63), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("assignee_id", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("slot", Integer, nullable=False, server_default="0"),
    Column("seq", Integer, nullable=False, server_default="0"),
    Column("added", String(16), nullable=True),
    Column("origin_task_id", BigInteger, nullable=True),
    Column("auto", String(40), nullable=True),
    Column("comment", Text, nullable=True),
    Column("decided_by", BigInteger, nullable=True),
    Column("decided_at", UtcDateTime(), nullable=True),
    Column("activated_at", UtcDateTime(), nullable=True),
    Column("round", Integer, nullable=False),
    Column("rev", Integer, nullable=False, server_default="1"),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_fl_approval_task_assignee", "assignee_id", "status", "id"),
    Index("ix_fl_approval_task_instance", "instance_id", "id"),
    Index("ix_fl_approval_task_token", "token_id"),
    schema=ENV,
)

#: The timeline of an instance (append-only): who did what, when, with which comment and
#: attachments (file ids); automatic decisions have no actor and say why in ``details``.
approval_event = Table(
    "fl_approval_event",
    env_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("instance_id", BigInteger, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor_id", BigInteger, nullable=True),
    Column("action", String(32), nullable=False),
    Column("node_id", String(63), nullable=True),
    Column("task_id", BigInteger, nullable=True),
    Column("comment", Text, nullable=True),
    Column("attachments", JSON, nullable=False),
    Column("details", JSON, nullable=False),
    Index("ix_fl_approval_event_instance", "instance_id", "id"),
    schema=ENV,
)

#: In-app notifications (new task, reminder, copy, outcome, a flow's `notify` action).
#: ``dedupe_key`` makes a job's or a timer's notification idempotent.
notification = Table(
    "fl_notification",
    env_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("instance_id", BigInteger, nullable=True),
    Column("task_id", BigInteger, nullable=True),
    Column("message", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("read_at", UtcDateTime(), nullable=True),
    Column("dedupe_key", String(200), nullable=True),
    Index("ix_fl_notification_user", "user_id", "id"),
    Index("uq_fl_notification_dedupe", "dedupe_key", unique=True),
    schema=ENV,
)

#: Saved views of a list (see ``formloom.platform.saved_views``): a name and a ``definition``
#: (filter, sort, columns, search) a user keeps for an entity. A private view is its owner's
#: alone; a ``shared`` one is offered to everyone who may read the entity. Names are unique
#: per owner and entity (saving again under the same name replaces the view).
saved_view = Table(
    "fl_saved_view",
    env_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("entity", String(63), nullable=False),
    Column("name", String(100), nullable=False),
    Column("owner_id", BigInteger, nullable=False),
    Column("shared", Boolean, nullable=False),
    Column("definition", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("uq_fl_saved_view_name", "entity", "owner_id", "name", unique=True),
    Index("ix_fl_saved_view_shared", "entity", "shared"),
    schema=ENV,
)

"""Stored credentials: browser sessions, login tokens and API keys, one table for all three.

A secret is ``<kind tag>_<prefix>_<random>`` (``fls_`` session, ``flt_`` login
token, ``flk_`` API key; the random part has 256 bits). It is shown once, when
issued; the table keeps only its SHA-256 (a lookup by hash needs no slow hash:
the secret is random, not a password) and the 8-character ``prefix`` that
people use to tell keys apart. ``last_used_at`` is written at most once a
minute per credential (:data:`TOUCH_INTERVAL`), not on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    RowMapping,
    Select,
    String,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)

from formloom.platform.database import Workspace
from formloom.platform.tables import credential, team_member, user

SESSION = "session"
TOKEN = "token"
API_KEY = "api_key"
KINDS = (SESSION, TOKEN, API_KEY)
TAGS = {SESSION: "fls", TOKEN: "flt", API_KEY: "flk"}
SESSION_LIFETIME = timedelta(hours=12)
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class Issued:
    """A credential just issued; ``secret`` (and a session's ``csrf_token``) are shown once."""

    id: int
    kind: str
    user_id: int
    prefix: str
    name: str
    env: str | None
    created_at: datetime
    expires_at: datetime | None
    secret: str = field(repr=False)
    csrf_token: str | None = field(default=None, repr=False)


def secret_hash(secret: str) -> str:
    """What the table stores instead of the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def kind_of(secret: str) -> str | None:
    """The kind a secret's tag names, or None for anything else."""
    tag = secret.partition("_")[0]
    return next((kind for kind, known in TAGS.items() if known == tag), None)


def issue(
    conn: Connection,
    *,
    kind: str,
    user_id: int,
    now: datetime,
    expires_at: datetime | None,
    env: str | None = None,
    name: str = "",
    ip: str | None = None,
) -> Issued:
    """Create a credential with a fresh random secret (and a CSRF token for sessions)."""
    prefix = secrets.token_hex(4)
    secret = f"{TAGS[kind]}_{prefix}_{secrets.token_urlsafe(32)}"
    csrf_token = secrets.token_urlsafe(32) if kind == SESSION else None
    inserted = conn.execute(
        insert(credential)
        .values(
            kind=kind,
            user_id=user_id,
            secret_hash=secret_hash(secret),
            prefix=prefix,
            name=name,
            env=env,
            csrf_token=csrf_token,
            created_at=now,
            expires_at=expires_at,
            created_ip=ip,
        )
        .returning(credential.c.id)
    )
    return Issued(
        id=inserted.scalar_one(),
        kind=kind,
        user_id=user_id,
        prefix=prefix,
        name=name,
        env=env,
        created_at=now,
        expires_at=expires_at,
        secret=secret,
        csrf_token=csrf_token,
    )


def comma_joined(text: ColumnElement[str]) -> ColumnElement[str]:
    """The aggregate of ``text`` joined with commas (``group_concat``/``string_agg``; NULL for
    no rows). The separator is SQL text, not a bound value, so the statement is rendered once
    rather than at every execution."""
    separator: Any = literal_column("','")
    return func.aggregate_strings(text, separator)


#: The user's columns :func:`find` adds to the credential's.
_USER_COLUMNS = (
    user.c.login.label("user_login"),
    user.c.active.label("user_active"),
    user.c.admin.label("user_admin"),
    user.c.display_name_en.label("user_display_name_en"),
    user.c.display_name_zh.label("user_display_name_zh"),
    user.c.language.label("user_language"),
)


def find(conn: Connection, secret: str) -> RowMapping | None:
    """The credential a secret names, with its user's row (``user_*`` columns), or None."""
    query = (
        select(credential, *_USER_COLUMNS)
        .join(user, user.c.id == credential.c.user_id)
        .where(credential.c.secret_hash == secret_hash(secret))
    )
    found = conn.execute(query).first()
    return None if found is None else found._mapping


def request_statement(*extra: ColumnElement[Any]) -> Select[Any]:
    """The statement that authenticates a request, bound to ``secret_hash``; build it once.

    One row (none for an unknown secret): the credential's columns that authentication
    needs, its user's (``user_*``, as :func:`find` names them), the ids of the user's
    teams (``user_team_ids``, comma-separated, NULL for none), and ``extra`` columns, so
    that a request can read what its service needs next in the same round trip.
    """
    team_ids = (
        select(comma_joined(cast(team_member.c.team_id, String)))
        .where(team_member.c.user_id == credential.c.user_id)
        .scalar_subquery()
    )
    return (
        select(
            credential.c.id,
            credential.c.kind,
            credential.c.user_id,
            credential.c.env,
            credential.c.csrf_token,
            credential.c.expires_at,
            credential.c.last_used_at,
            credential.c.revoked_at,
            *_USER_COLUMNS,
            team_ids.label("user_team_ids"),
            *extra,
        )
        .join(user, user.c.id == credential.c.user_id)
        .where(credential.c.secret_hash == bindparam("secret_hash"))
    )


#: :func:`request_statement` without extra columns.
FOR_REQUEST = request_statement()


def find_for_request(
    conn: Connection, secret: str, *, statement: Select[Any] = FOR_REQUEST, **params: Any
) -> RowMapping | None:
    """The row of ``statement`` (a :func:`request_statement`) for ``secret``, or None."""
    found = conn.execute(statement, {"secret_hash": secret_hash(secret), **params}).first()
    return None if found is None else found._mapping


def team_ids_of_row(row: Mapping[Any, Any]) -> frozenset[int]:
    """The user's team ids that a :func:`request_statement` row holds."""
    listed: str | None = row["user_team_ids"]
    return frozenset(int(team) for team in listed.split(",")) if listed else frozenset()


def touch(
    workspace: Workspace, credential_id: int, *, last_used_at: datetime | None, now: datetime
) -> None:
    """Record a use, unless one was recorded less than :data:`TOUCH_INTERVAL` ago."""
    if last_used_at is not None and now - last_used_at < TOUCH_INTERVAL:
        return
    stale = now - TOUCH_INTERVAL
    with workspace.begin() as conn:
        conn.execute(
            update(credential)
            .where(
                credential.c.id == credential_id,
                or_(credential.c.last_used_at.is_(None), credential.c.last_used_at < stale),
            )
            .values(last_used_at=now)
        )


def revoke(conn: Connection, credential_id: int, *, now: datetime) -> bool:
    """Revoke one credential; False when it was revoked already."""
    done = conn.execute(
        update(credential)
        .where(credential.c.id == credential_id, credential.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return done.rowcount > 0


def revoke_secret(conn: Connection, secret: str, *, kind: str, now: datetime) -> int | None:
    """Revoke the credential of kind ``kind`` that ``secret`` names; its id, or None."""
    found = find(conn, secret)
    if found is None or found["kind"] != kind:
        return None
    return found["id"] if revoke(conn, found["id"], now=now) else None


def revoke_all(
    conn: Connection,
    user_id: int,
    *,
    now: datetime,
    kinds: Iterable[str] = KINDS,
    keep: int | None = None,
) -> int:
    """Revoke every live credential of ``user_id`` of ``kinds`` (but ``keep``); how many."""
    query = (
        update(credential)
        .where(
            credential.c.user_id == user_id,
            credential.c.kind.in_(list(kinds)),
            credential.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    if keep is not None:
        query = query.where(credential.c.id != keep)
    return conn.execute(query).rowcount


def revoke_for_environment(conn: Connection, env: str, *, now: datetime) -> int:
    """Revoke the credentials bound to ``env`` (it is being dropped); how many."""
    done = conn.execute(
        update(credential)
        .where(credential.c.env == env, credential.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return done.rowcount


def credential_json(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A credential as people see it: never the secret or its hash."""

    def moment(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": row["id"],
        "kind": row["kind"],
        "prefix": row["prefix"],
        "name": row["name"],
        "env": row["env"],
        "created_at": moment(row["created_at"]),
        "expires_at": moment(row["expires_at"]),
        "last_used_at": moment(row["last_used_at"]),
        "revoked_at": moment(row["revoked_at"]),
    }

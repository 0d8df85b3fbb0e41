"""Logging in with a login and password, and logging out.

A login always starts a new session with a new secret: a session cookie sent
along with the login is revoked, never reused (session fixation). The password
is checked outside any transaction (argon2 is slow on purpose, and SQLite has
one writer), then the attempt, the audit entry and the session are written
together. An unknown login, a wrong password, a user without a password and a
deactivated user all get the same answer; only the audit entry tells them apart.
Rate limits: :mod:`formloom.platform.login_throttle`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update

from formloom.platform import credentials, login_throttle, security_audit
from formloom.platform.auth import Authenticated, Unauthenticated
from formloom.platform.caller import Caller
from formloom.platform.credentials import API_KEY, SESSION, SESSION_LIFETIME, Issued
from formloom.platform.database import Workspace
from formloom.platform.environments import require_environment_in
from formloom.platform.errors import Conflict
from formloom.platform.passwords import hash_password, verify
from formloom.platform.record_errors import say
from formloom.platform.tables import user
from formloom.platform.users import normalise_login, user_json

log = logging.getLogger(__name__)


class LoginFailed(Unauthenticated):
    """Wrong login or password (or a user who may not log in): one message for all."""

    code = "login_failed"


@dataclass(frozen=True)
class LoggedIn:
    """The user (JSON) and the new session (its secret goes into the cookie)."""

    user: dict[str, Any]
    session: Issued


def log_in(
    workspace: Workspace,
    *,
    login: str,
    password: str,
    env: str | None = None,
    replaced_session: str | None = None,
    ip: str | None = None,
    lang: str = "en",
    now: datetime | None = None,
) -> LoggedIn:
    """Check the password and start a session (bound to ``env`` when given).

    Raises :class:`LoginThrottled` while the account or address is locked (even
    for the right password) and :class:`LoginFailed` for any wrong credential.
    """
    now = now or datetime.now(UTC)
    key = normalise_login(login)[:100]
    with workspace.begin(readonly=True) as conn:
        if env is not None:
            require_environment_in(conn, env)
        lock = login_throttle.current_lock(conn, login=key, ip=ip, now=now)
        found = conn.execute(select(user).where(user.c.login == key)).first()
    if lock is not None:
        with workspace.begin() as conn:
            _audit_failure(conn, key, found, f"{lock.scope}_locked", ip, now)
        log.warning("login refused for %r from %s: %s locked", key, ip, lock.scope)
        raise login_throttle.refusal(lock, now, lang)
    profile = workspace.settings.password_hashing
    verified = verify(found.password_hash if found is not None else None, password, profile=profile)
    reason = _failure_reason(found, verified.ok)
    rehash = verified.needs_rehash and reason is None
    new_hash = hash_password(password, profile=profile) if rehash else None
    with workspace.begin() as conn:
        if reason is not None or found is None:
            login_throttle.record_attempt(conn, login=key, ip=ip, outcome="failure", now=now)
            _audit_failure(conn, key, found, reason or "unknown_login", ip, now)
        else:
            login_throttle.record_attempt(conn, login=key, ip=ip, outcome="success", now=now)
            replaced = None
            if replaced_session:
                replaced = credentials.revoke_secret(conn, replaced_session, kind=SESSION, now=now)
            if new_hash is not None:
                conn.execute(
                    update(user).where(user.c.id == found.id).values(password_hash=new_hash)
                )
            session = credentials.issue(
                conn,
                kind=SESSION,
                user_id=found.id,
                now=now,
                expires_at=now + SESSION_LIFETIME,
                env=env,
                ip=ip,
            )
            security_audit.record(
                conn,
                action="login.succeeded",
                at=now,
                actor_id=found.id,
                target=f"login:{key}",
                details={
                    "session_id": session.id,
                    "env": env,
                    "replaced_session_id": replaced,
                    "password_rehashed": new_hash is not None,
                },
                ip=ip,
            )
            shown = user_json(conn, found, with_roles=True)
    if reason is not None or found is None:
        log.warning("login failed for %r from %s: %s", key, ip, reason)
        limit, minutes = login_throttle.ACCOUNT_LIMIT, login_throttle.LOCK.total_seconds() // 60
        raise LoginFailed(
            say(
                lang,
                f"wrong login or password; check both and try again (after {limit} failed "
                f"attempts the account is locked for {minutes:.0f} minutes)",
                f"登录名或密码错误；请检查后重试"
                f"（连续失败 {limit} 次后账号将锁定 {minutes:.0f} 分钟）",
            )
        )
    log.info("login of %r from %s", key, ip)
    return LoggedIn(shown, session)


def log_out(
    workspace: Workspace,
    authenticated: Authenticated,
    *,
    caller: Caller,
    now: datetime | None = None,
) -> None:
    """End the session (or revoke the login token) the request authenticated with."""
    now = now or datetime.now(UTC)
    kind = authenticated.principal.credential
    if kind == API_KEY:
        raise Conflict(
            caller.say(
                "an API key is not logged out: revoke it with DELETE /api/auth/api-keys/{id}",
                "API 密钥无需注销：请通过 DELETE /api/auth/api-keys/{id} 撤销",
            )
        )
    with workspace.begin() as conn:
        credentials.revoke(conn, authenticated.credential_id, now=now)
        security_audit.record(
            conn,
            action="logout",
            at=now,
            caller=caller,
            target=f"login:{authenticated.principal.login}",
            details={"credential_id": authenticated.credential_id, "kind": kind},
        )


def _failure_reason(found: Row[Any] | None, password_ok: bool) -> str | None:
    if found is None:
        return "unknown_login"
    if found.password_hash is None:
        return "no_password"
    if not password_ok:
        return "wrong_password"
    if not found.active:
        return "inactive"
    return None


def _audit_failure(
    conn: Connection, key: str, found: Row[Any] | None, reason: str, ip: str | None, now: datetime
) -> None:
    security_audit.record(
        conn,
        action="login.failed",
        at=now,
        actor_id=found.id if found is not None else None,
        target=f"login:{key}",
        details={"reason": reason},
        ip=ip,
    )

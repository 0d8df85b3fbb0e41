"""Setting passwords (administrators), changing one's own, and unlocking a locked login.

A new password must meet the policy (:func:`formloom.platform.passwords.password_issues`).
Setting or changing a password ends the user's other sessions and login tokens
(someone who knew the old password may hold one); API keys, made for
integrations, stay valid. Setting a password or unlocking also lifts a login
lock, so "ask an administrator" in the lock message has an answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, update

from formloom.engine.errors import Issue
from formloom.platform import credentials, login_throttle, security_audit
from formloom.platform.caller import Caller
from formloom.platform.credentials import SESSION, TOKEN
from formloom.platform.database import Workspace
from formloom.platform.errors import Forbidden, Invalid
from formloom.platform.passwords import hash_password, password_issues, verify
from formloom.platform.tables import user
from formloom.platform.user_managers import MANAGEMENT_ENV, require_user_manager
from formloom.platform.users import load_user


@dataclass(frozen=True)
class PasswordChange:
    """A user changing their own password (``keep``: the credential in use stays valid)."""

    current: str = field(repr=False)
    new: str = field(repr=False)
    keep: int | None = None


def set_password(
    workspace: Workspace,
    user_id: int,
    password: str,
    *,
    caller: Caller,
    now: datetime | None = None,
) -> None:
    """An administrator sets a user's password (and lifts a login lock)."""
    now = now or datetime.now(UTC)
    with workspace.begin(MANAGEMENT_ENV) as conn:
        require_user_manager(conn, caller.principal, lang=caller.lang)
        found = load_user(conn, user_id, caller)
        issues = password_issues(password, login=found.login, lang=caller.lang)
        if issues:
            raise Invalid(issues[0].message, issues=issues)
        hashed = hash_password(password, profile=workspace.settings.password_hashing)
        _store(conn, found, hashed, caller=caller, now=now, by="administrator", keep=None)
        login_throttle.record_attempt(
            conn, login=found.login, ip=caller.ip, outcome="reset", now=now
        )


def change_own_password(
    workspace: Workspace, change: PasswordChange, *, caller: Caller, now: datetime | None = None
) -> None:
    """The caller changes their own password, proving the current one.

    A wrong current password counts as a failed login: this is no way around the lock.
    """
    now = now or datetime.now(UTC)
    user_id = caller.principal.user_id
    if user_id is None:
        raise Forbidden(caller.say("the platform has no password", "平台自身没有密码"))
    with workspace.begin(readonly=True) as conn:
        found = load_user(conn, user_id, caller)
        lock = login_throttle.current_lock(conn, login=found.login, ip=caller.ip, now=now)
    if lock is not None:
        raise login_throttle.refusal(lock, now, caller.lang)
    issues = password_issues(change.new, login=found.login, lang=caller.lang, path="/new_password")
    profile = workspace.settings.password_hashing
    if not verify(found.password_hash, change.current, profile=profile).ok:
        with workspace.begin() as conn:
            login_throttle.record_attempt(
                conn, login=found.login, ip=caller.ip, outcome="failure", now=now
            )
        message = caller.say("the current password is wrong", "当前密码不正确")
        issues.insert(0, Issue("/current_password", "wrong_password", message))
    if issues:
        raise Invalid(issues[0].message, issues=issues)
    hashed = hash_password(change.new, profile=profile)
    with workspace.begin() as conn:
        _store(conn, found, hashed, caller=caller, now=now, by="self", keep=change.keep)


def unlock(
    workspace: Workspace, user_id: int, *, caller: Caller, now: datetime | None = None
) -> None:
    """Lift the lock of a user's login after too many failed attempts."""
    now = now or datetime.now(UTC)
    with workspace.begin(MANAGEMENT_ENV) as conn:
        require_user_manager(conn, caller.principal, lang=caller.lang)
        found = load_user(conn, user_id, caller)
        login_throttle.record_attempt(
            conn, login=found.login, ip=caller.ip, outcome="reset", now=now
        )
        security_audit.record(
            conn, action="user.unlocked", at=now, caller=caller, target=f"user:{found.login}"
        )


def _store(
    conn: Connection,
    found: Row[Any],
    hashed: str,
    *,
    caller: Caller,
    now: datetime,
    by: str,
    keep: int | None,
) -> None:
    conn.execute(
        update(user)
        .where(user.c.id == found.id)
        .values(password_hash=hashed, password_changed_at=now, updated_at=now)
    )
    revoked = credentials.revoke_all(conn, found.id, now=now, kinds=(SESSION, TOKEN), keep=keep)
    security_audit.record(
        conn,
        action="password.changed",
        at=now,
        caller=caller,
        target=f"user:{found.login}",
        details={"by": by, "credentials_revoked": revoked},
    )

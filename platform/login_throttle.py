"""Login rate limiting, kept in the database (several processes serve one workspace).

Per account: :data:`ACCOUNT_LIMIT` failed logins within :data:`WINDOW` lock the
login for :data:`LOCK` from the failure that reached the limit; a success (or
an administrator's unlock) starts the count again. Per address:
:data:`ADDRESS_LIMIT` failures within the window lock the address the same way,
whatever the logins tried (a success does not reset it: one known account
must not open the door to guessing others). Refused attempts while locked are
not counted, so a lock ends on time. Unknown logins count like known ones:
the lock says nothing about whether an account exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, Connection, delete, func, insert, literal, select

from formloom.platform.errors import PlatformError
from formloom.platform.record_errors import say
from formloom.platform.tables import UtcDateTime, login_attempt

ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20
WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=15)
KEEP = timedelta(days=1)
Outcome = Literal["success", "failure", "reset"]


class LoginThrottled(PlatformError):
    """Too many failed logins for the account or from the address (HTTP 429)."""

    status = 429
    code = "too_many_failed_logins"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


@dataclass(frozen=True)
class Lock:
    """A lock in force: on the ``account`` or on the client's ``address``, until ``until``."""

    scope: Literal["account", "address"]
    until: datetime

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until the lock ends (at least 1)."""
        return max(1, math.ceil((self.until - now).total_seconds()))


def current_lock(conn: Connection, *, login: str, ip: str | None, now: datetime) -> Lock | None:
    """The lock that refuses a login attempt now, or None."""
    horizon = now - WINDOW - LOCK
    if ip is not None:
        by_address = _failures(conn, login_attempt.c.ip == ip, horizon, ADDRESS_LIMIT)
        until = _locked_until(by_address, ADDRESS_LIMIT, now)
        if until is not None:
            return Lock("address", until)
    last_success = (
        select(func.max(login_attempt.c.at))
        .where(login_attempt.c.login == login, login_attempt.c.outcome != "failure")
        .scalar_subquery()
    )
    since_success = func.coalesce(last_success, literal(horizon, UtcDateTime()))
    by_account = _failures(
        conn,
        (login_attempt.c.login == login) & (login_attempt.c.at > since_success),
        horizon,
        ACCOUNT_LIMIT,
    )
    until = _locked_until(by_account, ACCOUNT_LIMIT, now)
    return None if until is None else Lock("account", until)


def refusal(lock: Lock, now: datetime, lang: str) -> LoginThrottled:
    """The error that refuses a login while ``lock`` holds, in ``lang``."""
    seconds = lock.retry_after(now)
    wait = minutes(seconds)
    if lock.scope == "account":
        message = say(
            lang,
            f"too many failed logins for this account; try again in {wait} minutes or ask "
            "an administrator",
            f"该账号登录失败次数过多；请在 {wait} 分钟后重试，或联系管理员",
        )
    else:
        message = say(
            lang,
            f"too many failed logins from this network address; try again in {wait} minutes",
            f"此网络地址登录失败次数过多；请在 {wait} 分钟后重试",
        )
    return LoginThrottled(message, retry_after=seconds)


def record_attempt(
    conn: Connection, *, login: str, ip: str | None, outcome: Outcome, now: datetime
) -> None:
    """Count an attempt (and drop attempts older than :data:`KEEP`)."""
    conn.execute(delete(login_attempt).where(login_attempt.c.at < now - KEEP))
    conn.execute(insert(login_attempt).values(login=login, ip=ip, at=now, outcome=outcome))


def _failures(
    conn: Connection, condition: ColumnElement[bool], horizon: datetime, limit: int
) -> list[datetime]:
    query = (
        select(login_attempt.c.at)
        .where(condition, login_attempt.c.outcome == "failure", login_attempt.c.at > horizon)
        .order_by(login_attempt.c.at.desc())
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def _locked_until(latest_first: list[datetime], limit: int, now: datetime) -> datetime | None:
    """The end of the lock the newest failure started, if it reached ``limit`` in the window."""
    if len(latest_first) < limit or latest_first[0] - latest_first[-1] > WINDOW:
        return None
    until = latest_first[0] + LOCK
    return until if until > now else None


def minutes(seconds: float) -> int:
    """Whole minutes, rounded up, at least one (how long a lock lasts, as people read it)."""
    return max(1, math.ceil(seconds / 60))

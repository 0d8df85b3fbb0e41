"""Authentication: turn what a request presents into a :class:`Principal`, or refuse it.

A request authenticates with ``Authorization: Bearer <secret>`` (a login token
or an API key) or with the ``formloom_session`` cookie of a browser session;
the bearer header wins when both are sent. Every request reads the credential
joined with its user, so revoking a credential, its expiry or deactivating the
user takes effect on the very next request in every process.

A cookie is sent by the browser on its own, so a cookie-authenticated request
that changes something (POST, PUT, PATCH, DELETE) must also carry the
session's CSRF token in ``X-CSRF-Token``: a page on another site cannot read it
(double submit against the stored token). Bearer credentials need no such
token: a browser never adds them by itself.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, Select

from formloom.platform import credentials
from formloom.platform.credentials import API_KEY, SESSION, TOKEN
from formloom.platform.database import Workspace
from formloom.platform.errors import Forbidden, PlatformError
from formloom.platform.identity import display_name
from formloom.platform.principal import Principal
from formloom.platform.record_errors import say

SESSION_COOKIE = "formloom_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_WHAT = {
    SESSION: ("session", "会话"),
    TOKEN: ("login token", "登录令牌"),
    API_KEY: ("API key", "API 密钥"),
}


class Unauthenticated(PlatformError):
    """No valid credential: the message says how to log in (HTTP 401)."""

    status = 401
    code = "unauthenticated"

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class CsrfFailed(Forbidden):
    """A cookie-authenticated request that changes something lacks the session's CSRF token."""

    code = "csrf_failed"


@dataclass(frozen=True)
class Authenticated:
    """The principal and the credential it authenticated with (for logout, password changes)."""

    principal: Principal
    credential_id: int
    csrf_token: str | None = field(default=None, repr=False)


def authenticate(
    workspace: Workspace,
    *,
    authorization: str | None,
    session_cookie: str | None,
    csrf_header: str | None,
    method: str,
    lang: str = "en",
    now: datetime | None = None,
) -> Principal:
    """The principal a request authenticates as; :class:`Unauthenticated` or :class:`CsrfFailed`."""
    return authenticate_request(
        workspace,
        authorization=authorization,
        session_cookie=session_cookie,
        csrf_header=csrf_header,
        method=method,
        lang=lang,
        now=now,
    ).principal


def authenticate_request(
    workspace: Workspace,
    *,
    authorization: str | None,
    session_cookie: str | None,
    csrf_header: str | None,
    method: str,
    lang: str = "en",
    now: datetime | None = None,
) -> Authenticated:
    """Like :func:`authenticate`, with the credential's id and a session's CSRF token."""
    presented = RequestCredential(
        authorization=authorization,
        session_cookie=session_cookie,
        csrf_header=csrf_header,
        method=method,
        lang=lang,
    )
    presented.precheck()
    with workspace.begin(readonly=True) as conn:
        presented.check_in(conn, now=now)
    presented.touch_if_due(workspace)
    assert presented.authenticated is not None
    return presented.authenticated


class RequestCredential:
    """What a request presented to authenticate, checked inside the transaction of its service.

    :meth:`precheck` refuses, without the database, a request that sent no usable
    credential. :meth:`check_in` then authenticates on the connection of the
    service's own transaction, with one statement: the credential, its user and the
    user's teams (and what else the service asks for in the same round trip, see
    :mod:`formloom.platform.env_transaction`), so a request needs no connection or
    transaction of its own to authenticate, and a revoked or expired credential or a
    deactivated user is refused on the very next request in every process.
    :meth:`touch_if_due` records the use afterwards (at most once a minute, see
    :func:`credentials.touch`) in a transaction of its own.
    """

    def __init__(
        self,
        *,
        authorization: str | None,
        session_cookie: str | None,
        csrf_header: str | None,
        method: str,
        lang: str = "en",
    ) -> None:
        self.authorization = authorization
        self.session_cookie = session_cookie
        self.csrf_header = csrf_header
        self.method = method
        self.lang = lang
        #: The outcome of the last :meth:`check_in`; None until one succeeded.
        self.authenticated: Authenticated | None = None
        self._touch: tuple[int, datetime | None, datetime] | None = None

    def precheck(self) -> tuple[str, tuple[str, ...]]:
        """The secret and the kinds of credential it may be; :class:`Unauthenticated` when the
        request sent none, a malformed ``Authorization`` header, or a secret of another kind."""
        lang = self.lang
        channel: tuple[str, ...]
        if self.authorization:
            secret, channel = _bearer(self.authorization, lang), (TOKEN, API_KEY)
        elif self.session_cookie:
            secret, channel = self.session_cookie, (SESSION,)
        else:
            raise Unauthenticated(_not_logged_in(lang))
        if credentials.kind_of(secret) not in channel:
            raise Unauthenticated(_not_valid(channel, lang))
        return secret, channel

    def check_in(
        self,
        conn: Connection,
        *,
        now: datetime | None = None,
        statement: Select[Any] = credentials.FOR_REQUEST,
        **params: Any,
    ) -> RowMapping:
        """Authenticate on ``conn`` with one statement, and return the row it read.

        ``statement`` is a :func:`credentials.request_statement`, maybe with extra columns
        (bound to ``params``) that the caller reads from the row once the credential is
        accepted. Sets :attr:`authenticated`.
        """
        now = now or datetime.now(UTC)
        lang = self.lang
        secret, channel = self.precheck()
        row = credentials.find_for_request(conn, secret, statement=statement, **params)
        if row is None:
            raise Unauthenticated(_not_valid(channel, lang))
        kind: str = row["kind"]
        _check_alive(kind, row["revoked_at"], row["expires_at"], now, lang)
        if not row["user_active"]:
            raise Unauthenticated(
                say(
                    lang,
                    f"the account `{row['user_login']}` is deactivated; ask an administrator to "
                    "activate it",
                    f"账号 `{row['user_login']}` 已停用；请联系管理员启用",
                )
            )
        if kind == SESSION and self.method.upper() not in SAFE_METHODS:
            _check_csrf(row["csrf_token"], self.csrf_header, lang)
        self._touch = (row["id"], row["last_used_at"], now)
        language: str = row["user_language"]
        principal = Principal(
            user_id=row["user_id"],
            login=row["user_login"],
            admin=row["user_admin"],
            environment=row["env"],
            credential=kind,
            display_name=display_name(
                row["user_display_name_en"], row["user_display_name_zh"], language
            )
            or row["user_login"],
            language=language,
            team_ids=credentials.team_ids_of_row(row),
        )
        self.authenticated = Authenticated(principal, row["id"], row["csrf_token"])
        return row

    def touch_if_due(self, workspace: Workspace) -> None:
        """Record the use :meth:`check_in` saw, unless one was recorded within the last minute."""
        if self._touch is None:
            return
        credential_id, last_used_at, now = self._touch
        self._touch = None
        credentials.touch(workspace, credential_id, last_used_at=last_used_at, now=now)


def _bearer(authorization: str, lang: str) -> str:
    scheme, _, secret = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated(
            say(
                lang,
                "the Authorization header must be `Bearer <token>` with a login token or an "
                "API key",
                "Authorization 请求头应为 `Bearer <令牌>`（登录令牌或 API 密钥）",
            )
        )
    return secret.strip()


def _not_logged_in(lang: str) -> str:
    return say(
        lang,
        "not logged in: log in with POST /api/auth/login (login and password; a "
        "browser session), or send `Authorization: Bearer <token>` with a token from "
        "POST /api/auth/tokens or an API key",
        "未登录：请用 POST /api/auth/login（登录名和密码，浏览器会话）登录，或发送 "
        "`Authorization: Bearer <令牌>`（令牌来自 POST /api/auth/tokens，或使用 API 密钥）",
    )


def _not_valid(channel: tuple[str, ...], lang: str) -> str:
    if channel == (SESSION,):
        return say(
            lang,
            "the session is not valid (it may have ended with a logout or a newer login); "
            "log in again with POST /api/auth/login",
            "会话无效（可能已注销或被新的登录取代）；请用 POST /api/auth/login 重新登录",
        )
    return say(
        lang,
        "the bearer token is not a valid login token or API key; get a token from "
        "POST /api/auth/tokens or create an API key",
        "Bearer 令牌不是有效的登录令牌或 API 密钥；"
        "请通过 POST /api/auth/tokens 获取令牌或创建 API 密钥",
    )


def _check_alive(
    kind: str, revoked_at: datetime | None, expires_at: datetime | None, now: datetime, lang: str
) -> None:
    en, zh = _WHAT[kind]
    renew_en, renew_zh = (
        (
            "create a new key with POST /api/auth/api-keys",
            "请通过 POST /api/auth/api-keys 创建新密钥",
        )
        if kind == API_KEY
        else ("log in again with POST /api/auth/login", "请用 POST /api/auth/login 重新登录")
    )
    if revoked_at is not None:
        raise Unauthenticated(
            say(
                lang,
                f"this {en} was revoked at {revoked_at:%Y-%m-%d %H:%M} UTC; {renew_en}",
                f"此{zh}已于 {revoked_at:%Y-%m-%d %H:%M} UTC 被撤销；{renew_zh}",
            )
        )
    if expires_at is not None and expires_at <= now:
        raise Unauthenticated(
            say(
                lang,
                f"this {en} expired at {expires_at:%Y-%m-%d %H:%M} UTC; {renew_en}",
                f"此{zh}已于 {expires_at:%Y-%m-%d %H:%M} UTC 过期；{renew_zh}",
            )
        )


def _check_csrf(expected: str | None, given: str | None, lang: str) -> None:
    if not given:
        raise CsrfFailed(
            say(
                lang,
                f"missing {CSRF_HEADER} header: a request that changes something with a session "
                "cookie must send the csrf_token the login returned (also in GET /api/auth/me)",
                f"缺少 {CSRF_HEADER} 请求头：使用会话 Cookie 的修改请求必须携带登录时返回的 "
                "csrf_token（也可从 GET /api/auth/me 获取）",
            )
        )
    if expected is None or not hmac.compare_digest(expected.encode(), given.encode()):
        raise CsrfFailed(
            say(
                lang,
                f"{CSRF_HEADER} does not match this session: send the csrf_token the login "
                "returned (also in GET /api/auth/me)",
                f"{CSRF_HEADER} 与当前会话不符：请发送登录时返回的 csrf_token"
                "（也可从 GET /api/auth/me 获取）",
            )
        )

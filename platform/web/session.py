"""Who is using the staff web app: the session cookie, and the CSRF token of HTML forms.

The app signs in with the same session cookie as ``POST /api/auth/login``. Pages
authenticate it as a safe request; a form post authenticates it as a change and
passes the form's hidden ``csrf_token`` field where the API takes the
``X-CSRF-Token`` header, so both are checked by the same code against the
session's stored token (:func:`formloom.platform.auth.authenticate_request`).

The sign-in form has no session yet: it carries a random token that must match
the ``formloom_login_csrf`` cookie set with the form (double submit), so another
site cannot sign a browser in to an account of its choosing.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import Request

from formloom.platform.auth import SESSION_COOKIE, Authenticated, CsrfFailed, authenticate_request
from formloom.platform.database import Workspace
from formloom.platform.principal import Principal
from formloom.platform.web.texts import texts_for

LOGIN_CSRF_COOKIE = "formloom_login_csrf"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class WebSession:
    """The signed-in user of a page, the CSRF token its forms carry, and the language."""

    authenticated: Authenticated
    lang: str

    @property
    def principal(self) -> Principal:
        return self.authenticated.principal

    @property
    def csrf_token(self) -> str:
        return self.authenticated.csrf_token or ""


def web_session(request: Request, *, lang: str, csrf_token: str | None = None) -> WebSession:
    """Authenticate the session cookie; for a post, ``csrf_token`` must be the session's.

    Raises :class:`~formloom.platform.auth.Unauthenticated` without a valid session
    and :class:`~formloom.platform.auth.CsrfFailed` for a post with a missing or wrong token.
    """
    workspace: Workspace = request.app.state.workspace
    authenticated = authenticate_request(
        workspace,
        authorization=None,
        session_cookie=request.cookies.get(SESSION_COOKIE),
        csrf_header=csrf_token,
        method=request.method,
        lang=lang,
    )
    return WebSession(authenticated, lang)


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def check_login_token(request: Request, given: str | None, *, lang: str) -> None:
    """The sign-in form's token must match its cookie (:class:`CsrfFailed` otherwise)."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not given or not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        raise CsrfFailed(texts_for(lang)["csrf_login"])

"""FastAPI dependencies for authentication: ``PrincipalDep``, ``CallerDep``, ``LangDep``.

``current_principal`` authenticates the request (see :mod:`formloom.platform.auth`)
and keeps the outcome on ``request.state`` for the routes that need the
credential itself (logout, password change, ``/api/auth/me``). It is a plain
function: it reads the database, so FastAPI runs it in its thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from formloom.platform.auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    Authenticated,
    authenticate_request,
)
from formloom.platform.caller import Caller
from formloom.platform.database import Workspace
from formloom.platform.principal import Principal

# Declared for the OpenAPI document (the "Authorize" button of /docs); the values are
# read from the request by :func:`current_authentication`, which checks them.
BEARER_SCHEME = HTTPBearer(
    scheme_name="bearer",
    auto_error=False,
    description="A login token (POST /api/auth/tokens) or an API key",
)
SESSION_SCHEME = APIKeyCookie(
    name=SESSION_COOKIE,
    scheme_name="session",
    auto_error=False,
    description="Set by POST /api/auth/login",
)
CSRF_SCHEME = APIKeyHeader(
    name=CSRF_HEADER,
    scheme_name="csrf",
    auto_error=False,
    description="The csrf_token of the login, for changes made with the session cookie",
)
BearerDoc = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER_SCHEME)]
SessionDoc = Annotated[str | None, Depends(SESSION_SCHEME)]
CsrfDoc = Annotated[str | None, Depends(CSRF_SCHEME)]


def language_of(accept_language: str | None) -> str:
    """``zh`` when the client prefers Chinese (``Accept-Language: zh-CN,…``), else ``en``."""
    return "zh" if (accept_language or "").strip().lower().startswith("zh") else "en"


def language(accept_language: Annotated[str | None, Header()] = None) -> str:
    """The language of the request's messages (see :func:`language_of`)."""
    return language_of(accept_language)


def client_ip(request: Request) -> str | None:
    """The client's address as the server saw it (behind a proxy: run uvicorn with
    ``--proxy-headers`` so that this is the real client)."""
    return request.client.host if request.client else None


def current_authentication(
    request: Request,
    _bearer: BearerDoc = None,
    _session: SessionDoc = None,
    _csrf: CsrfDoc = None,
) -> Authenticated:
    """Authenticate the request once (cached on ``request.state``)."""
    known: Authenticated | None = getattr(request.state, "formloom_authenticated", None)
    if known is not None:
        return known
    workspace: Workspace = request.app.state.workspace
    authenticated = authenticate_request(
        workspace,
        authorization=request.headers.get("authorization"),
        session_cookie=request.cookies.get(SESSION_COOKIE),
        csrf_header=request.headers.get(CSRF_HEADER),
        method=request.method,
        lang=language(request.headers.get("accept-language")),
    )
    request.state.formloom_authenticated = authenticated
    return authenticated


def current_principal(
    request: Request,
    _bearer: BearerDoc = None,
    _session: SessionDoc = None,
    _csrf: CsrfDoc = None,
) -> Principal:
    """The authenticated principal; 401 (``WWW-Authenticate: Bearer``) or 403 (CSRF) if none."""
    return current_authentication(request).principal


def current_caller(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> Caller:
    """The principal with the request's address and language, for identity services."""
    return Caller(principal, client_ip(request), language(request.headers.get("accept-language")))


PrincipalDep = Annotated[Principal, Depends(current_principal)]
AuthenticatedDep = Annotated[Authenticated, Depends(current_authentication)]
CallerDep = Annotated[Caller, Depends(current_caller)]
LangDep = Annotated[str, Depends(language)]

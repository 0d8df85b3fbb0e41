"""FastAPI dependencies for authentication: ``PrincipalDep``, ``CredentialDep``, ``CallerDep``,
``LangDep``.

``current_principal`` authenticates the request (see :mod:`formloom.platform.auth`)
and keeps the outcome on ``request.state`` for the routes that need the
credential itself (logout, password change, ``/api/auth/me``). It is a plain
function: it reads the database, so FastAPI runs it in its thread pool.

``request_credential`` (the records routes) reads no database: it refuses a
request without a usable credential at once and hands the credential to the
service, which authenticates it inside its own transaction
(:mod:`formloom.platform.env_transaction`). An error response to a request
whose credential was not checked yet (a bad parameter, say) checks it first
(:func:`unchecked_credential_error`), so a bad credential is always reported
as such, as when every route authenticated before anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from formloom.platform.auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    Authenticated,
    RequestCredential,
    authenticate_request,
)
from formloom.platform.caller import Caller
from formloom.platform.database import Workspace
from formloom.platform.errors import PlatformError
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
CREDENTIAL_SCHEMES = (BEARER_SCHEME, SESSION_SCHEME, CSRF_SCHEME)
BearerDoc = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER_SCHEME)]
SessionDoc = Annotated[str | None, Depends(SESSION_SCHEME)]
CsrfDoc = Annotated[str | None, Depends(CSRF_SCHEME)]


def language_of(accept_language: str | None) -> str:
    """``zh`` when the client prefers Chinese (``Accept-Language: zh-CN,…``), else ``en``."""
    return "zh" if (accept_language or "").strip().lower().startswith("zh") else "en"


async def language(accept_language: Annotated[str | None, Header()] = None) -> str:
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
        lang=language_of(request.headers.get("accept-language")),
    )
    request.state.formloom_authenticated = authenticated
    return authenticated


async def request_credential(request: Request) -> RequestCredential:
    """The request's credential, for the service to authenticate in its own transaction.

    401 at once when the request sent none (or a malformed one); no database work here.
    Routes that take it use :class:`CredentialRoute` for their OpenAPI security.
    """
    credential = RequestCredential(
        authorization=request.headers.get("authorization"),
        session_cookie=request.cookies.get(SESSION_COOKIE),
        csrf_header=request.headers.get(CSRF_HEADER),
        method=request.method,
        lang=language_of(request.headers.get("accept-language")),
    )
    credential.precheck()
    request.state.formloom_credential = credential
    return credential


class CredentialRoute(APIRoute):
    """A route taking :data:`CredentialDep`: its OpenAPI operation names the credential
    schemes (as the routes taking :data:`PrincipalDep` do through their dependencies).

    The schemes are declared on the operation instead of resolved as dependencies of
    :func:`request_credential`: resolving three dependencies per request only for the
    document costs about 7 % of a record read.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        security: list[dict[str, list[str]]] = [
            {scheme.scheme_name: []} for scheme in CREDENTIAL_SCHEMES
        ]
        kwargs["openapi_extra"] = {"security": security, **(kwargs.get("openapi_extra") or {})}
        super().__init__(path, endpoint, **kwargs)


async def unchecked_credential_error(request: Request) -> PlatformError | None:
    """Why the request's credential does not authenticate, when an error is about to be
    answered before the service checked it; None when it does (or was checked)."""
    credential: RequestCredential | None = getattr(request.state, "formloom_credential", None)
    if credential is None or credential.authenticated is not None:
        return None
    workspace: Workspace = request.app.state.workspace
    try:
        await run_in_threadpool(
            authenticate_request,
            workspace,
            authorization=credential.authorization,
            session_cookie=credential.session_cookie,
            csrf_header=credential.csrf_header,
            method=credential.method,
            lang=credential.lang,
        )
    except PlatformError as exc:
        return exc
    return None


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
    return Caller(
        principal, client_ip(request), language_of(request.headers.get("accept-language"))
    )


PrincipalDep = Annotated[Principal, Depends(current_principal)]
AuthenticatedDep = Annotated[Authenticated, Depends(current_authentication)]
CredentialDep = Annotated[RequestCredential, Depends(request_credential)]
CallerDep = Annotated[Caller, Depends(current_caller)]
LangDep = Annotated[str, Depends(language)]

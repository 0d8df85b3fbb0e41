"""HTTP routes for logging in and for one's own credentials: ``/api/auth``.

- ``POST login`` ``{login, password, env?}``: starts a browser session (cookie
  ``formloom_session``: HttpOnly, SameSite=Lax; Secure over HTTPS or with
  ``FORMLOOM_SECURE_COOKIES=1``) and returns ``{user, csrf_token, expires_at}``.
  Send the ``csrf_token`` as ``X-CSRF-Token`` with every POST/PUT/PATCH/DELETE
  that relies on the cookie. Failed logins are rate limited (429 + ``Retry-After``).
- ``POST logout``, ``GET me``, ``POST password`` (change one's own).
- ``POST tokens``: a bearer login token ``{token, expires_at}`` (shown once).
- ``POST|GET api-keys``, ``DELETE api-keys/{id}``: the caller's API keys.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr

from formloom.platform import login, tokens
from formloom.platform.auth import SESSION_COOKIE
from formloom.platform.auth_deps import AuthenticatedDep, CallerDep, LangDep, client_ip
from formloom.platform.credentials import SESSION_LIFETIME, Issued, credential_json
from formloom.platform.deps import WorkspaceDep
from formloom.platform.user_passwords import PasswordChange, change_own_password
from formloom.platform.users import get_own_user

router = APIRouter(prefix="/api/auth", tags=["auth"])


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    login: str = Field(min_length=1, max_length=200, examples=["zhang.wei"])
    password: SecretStr = Field(max_length=1024)
    env: str | None = Field(default=None, description="Bind the session to one environment")


class PasswordChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: SecretStr = Field(max_length=1024)
    new_password: SecretStr = Field(max_length=1024)


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    env: str | None = Field(default=None, description="Bind the token to one environment")
    expires_in: int = Field(
        default=int(tokens.TOKEN_LIFETIME.total_seconds()),
        ge=1,
        le=int(tokens.MAX_TOKEN_LIFETIME.total_seconds()),
        description="Seconds until the token expires",
    )
    name: str = Field(default="", max_length=tokens.NAME_MAX)


class ApiKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=tokens.NAME_MAX, examples=["erp sync"])
    env: str = Field(description="The environment the key may reach (only that one)")
    expires_at: AwareDatetime | None = Field(
        default=None, description="With a timezone, e.g. 2027-01-01T00:00:00Z; default: never"
    )


@router.post("/login")
def log_in(
    body: LoginRequest, request: Request, response: Response, workspace: WorkspaceDep, lang: LangDep
) -> dict[str, Any]:
    """Log in with a login and password: a new session cookie and its CSRF token."""
    logged_in = login.log_in(
        workspace,
        login=body.login,
        password=body.password.get_secret_value(),
        env=body.env,
        replaced_session=request.cookies.get(SESSION_COOKIE),
        ip=client_ip(request),
        lang=lang,
    )
    session = logged_in.session
    secure = request.url.scheme == "https" or workspace.settings.secure_cookies
    response.set_cookie(
        SESSION_COOKIE,
        session.secret,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )
    return {
        "user": logged_in.user,
        "csrf_token": session.csrf_token,
        "expires_at": _iso(session.expires_at),
    }


@router.post("/logout", status_code=204)
def log_out(
    authenticated: AuthenticatedDep, caller: CallerDep, workspace: WorkspaceDep
) -> Response:
    """End the session (or revoke the login token) this request authenticated with."""
    login.log_out(workspace, authenticated, caller=caller)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me")
def me(
    authenticated: AuthenticatedDep, caller: CallerDep, workspace: WorkspaceDep
) -> dict[str, Any]:
    """Who the request authenticates as, how, and (for a session) its CSRF token."""
    principal = authenticated.principal
    return {
        "user": get_own_user(workspace, caller=caller),
        "credential": principal.credential,
        "environment": principal.environment,
        "csrf_token": authenticated.csrf_token,
    }


@router.post("/password", status_code=204)
def change_password(
    body: PasswordChangeRequest,
    authenticated: AuthenticatedDep,
    caller: CallerDep,
    workspace: WorkspaceDep,
) -> Response:
    """Change one's own password; other sessions and login tokens end, this one stays."""
    change = PasswordChange(
        current=body.current_password.get_secret_value(),
        new=body.new_password.get_secret_value(),
        keep=authenticated.credential_id,
    )
    change_own_password(workspace, change, caller=caller)
    return Response(status_code=204)


@router.post("/tokens", status_code=201)
def create_token(body: TokenRequest, caller: CallerDep, workspace: WorkspaceDep) -> dict[str, Any]:
    """A bearer login token for scripts (``Authorization: Bearer <token>``); shown once."""
    issued = tokens.create_token(
        workspace,
        caller=caller,
        env=body.env,
        lifetime=timedelta(seconds=body.expires_in),
        name=body.name,
    )
    return {"token": issued.secret, **_issued_json(issued)}


@router.post("/api-keys", status_code=201)
def create_api_key(
    body: ApiKeyRequest, caller: CallerDep, workspace: WorkspaceDep
) -> dict[str, Any]:
    """An API key bound to one environment; the key is shown this once only."""
    new = tokens.NewApiKey(name=body.name, env=body.env, expires_at=body.expires_at)
    issued = tokens.create_api_key(workspace, new, caller=caller)
    return {"key": issued.secret, **_issued_json(issued)}


@router.get("/api-keys")
def list_api_keys(caller: CallerDep, workspace: WorkspaceDep) -> list[dict[str, Any]]:
    """The caller's API keys (prefix, name, environment, dates, last use), never the keys."""
    return tokens.list_api_keys(workspace, caller=caller)


@router.delete("/api-keys/{key_id}", status_code=204)
def revoke_api_key(key_id: int, caller: CallerDep, workspace: WorkspaceDep) -> Response:
    """Revoke one of the caller's API keys: it stops working at once."""
    tokens.revoke_api_key(workspace, key_id, caller=caller)
    return Response(status_code=204)


def _issued_json(issued: Issued) -> dict[str, Any]:
    return credential_json(
        {
            "id": issued.id,
            "kind": issued.kind,
            "prefix": issued.prefix,
            "name": issued.name,
            "env": issued.env,
            "created_at": issued.created_at,
            "expires_at": issued.expires_at,
            "last_used_at": None,
            "revoked_at": None,
        }
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()

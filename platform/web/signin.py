"""Sign-in, sign-out, the language switch and the vendored assets of the staff web app."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from formloom.engine.forms import (
    FORM_RULES_JS,
)
from formloom.platform import login
from formloom.platform.auth import SESSION_COOKIE
from formloom.platform.auth_deps import client_ip
from formloom.platform.caller import Caller
from formloom.platform.credentials import SESSION_LIFETIME
from formloom.platform.environments import PRODUCTION
from formloom.platform.errors import PlatformError
from formloom.platform.web import pages
from formloom.platform.web.session import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    check_login_token,
    new_login_token,
    web_session,
)
from formloom.platform.web.texts import LANG_COOKIE, LANGUAGES, request_language

HERE = Path(__file__).parent
#: The app's assets: the scripts and styles in ``static/`` and the form engine's
#: (a fixed map built at import; nothing else on disk is reachable).
STATIC_FILES = {
    path.name: path
    for folder in (HERE / "static", FORM_RULES_JS.parent)
    for path in sorted(folder.iterdir())
    if path.suffix in (".js", ".css")
}
_ONE_YEAR = 365 * 24 * 3600

router = APIRouter(prefix="/app", include_in_schema=False)


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    """The app's vendored assets (a fixed list: nothing else on disk is reachable)."""
    path = STATIC_FILES.get(name)
    if path is None:
        return Response(status_code=404)
    return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})


@router.get("")
def home(request: Request) -> Response:
    return RedirectResponse(f"/app/{PRODUCTION}", status_code=303)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    lang = request_language(request)
    return _login_form(request, lang, next_url=pages.safe_next(next), error=None, login_name="")


def _login_form(
    request: Request, lang: str, *, next_url: str, error: str | None, login_name: str
) -> Response:
    token = new_login_token()
    response = pages.page(
        request,
        "login.html",
        lang=lang,
        status=200 if error is None else 401,
        login_token=token,
        next_url=next_url,
        error=error,
        login_name=login_name,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, max_age=3600, path="/app/login", httponly=True, samesite="lax"
    )
    return response


@router.post("/login")
async def login_submit(request: Request) -> Response:
    lang = request_language(request)
    items = await pages.posted(request)
    next_url = pages.safe_next(pages.field(items, "next"))
    login_name = pages.field(items, "login") or ""
    try:
        check_login_token(request, pages.field(items, CSRF_FIELD), lang=lang)
        logged_in = await run_in_threadpool(
            lambda: login.log_in(
                pages.workspace(request),
                login=login_name,
                password=pages.field(items, "password") or "",
                replaced_session=request.cookies.get(SESSION_COOKIE),
                ip=client_ip(request),
                lang=lang,
            )
        )
    except PlatformError as exc:
        return _login_form(
            request, lang, next_url=next_url, error=exc.message, login_name=login_name
        )
    response = RedirectResponse(next_url, status_code=303)
    secure = request.url.scheme == "https" or pages.workspace(request).settings.secure_cookies
    response.set_cookie(
        SESSION_COOKIE,
        logged_in.session.secret,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/app/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    lang = request_language(request)
    items = await pages.posted(request)

    def work() -> Response:
        session = web_session(request, lang=lang, csrf_token=pages.field(items, CSRF_FIELD))
        caller = Caller(session.principal, client_ip(request), lang)
        login.log_out(pages.workspace(request), session.authenticated, caller=caller)
        response = RedirectResponse("/app/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return await run_in_threadpool(pages.guarded, request, lang, work)


@router.get("/lang/{lang}")
def switch_language(lang: str, next: str | None = None) -> Response:
    """Set the interface language (a preference cookie; it changes no data)."""
    response = RedirectResponse(pages.safe_next(next), status_code=303)
    if lang in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=_ONE_YEAR, path="/", samesite="lax")
    return response

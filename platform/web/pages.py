"""Plumbing shared by the staff web app's page modules: the page renderer and error handling.

:func:`page` renders a template inside the app's frame (navigation by read
permission, language switch, the signed-in user); :func:`guarded` turns a missing
session into a redirect to the sign-in page and any other platform error into an
error page. Page modules (``routes``, and one module per area) build on these.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from formloom.platform.auth import Unauthenticated
from formloom.platform.database import Workspace
from formloom.platform.errors import PlatformError
from formloom.platform.metastore import MetaStore
from formloom.platform.web import views
from formloom.platform.web.session import WebSession
from formloom.platform.web.texts import texts_for

HERE = Path(__file__).parent
templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def workspace(request: Request) -> Workspace:
    workspace: Workspace = request.app.state.workspace
    return workspace


def metastore(request: Request) -> MetaStore:
    metastore: MetaStore = request.app.state.metastore
    return metastore


def page(
    request: Request,
    template: str,
    *,
    lang: str,
    status: int = 200,
    session: WebSession | None = None,
    env: str | None = None,
    **context: Any,
) -> HTMLResponse:
    nav: list[views.NavEntity] = []
    if session is not None and env is not None:
        nav = views.navigation(
            workspace(request),
            metastore(request),
            env=env,
            principal=session.principal,
            lang=lang,
        )
    html = templates.get_template(template).render(
        t=texts_for(lang),
        lang=lang,
        html_lang="zh-CN" if lang == "zh" else "en",
        here=request.url.path,
        session=session,
        env=env,
        nav=nav,
        current_entity=context.pop("current_entity", None),
        **context,
    )
    return HTMLResponse(html, status_code=status)


def guarded(request: Request, lang: str, work: Callable[[], Response]) -> Response:
    """Run a page: no session → the sign-in page; any other platform error → an error page."""
    try:
        return work()
    except Unauthenticated:
        target = request.url.path
        return RedirectResponse(f"/app/login?{urlencode({'next': target})}", status_code=303)
    except PlatformError as exc:
        return page(
            request,
            "error.html",
            lang=lang,
            status=exc.status,
            message=exc.message,
            issues=[issue.message for issue in exc.issues if issue.message != exc.message],
        )


def safe_next(target: str | None) -> str:
    """Only paths of this app (no other host) are followed after sign-in or a switch."""
    if target and target.startswith("/app") and not target.startswith("//"):
        return target
    return "/app"


async def posted(request: Request) -> list[tuple[str, str]]:
    data = await request.form()
    return [(key, value) for key, value in data.multi_items() if isinstance(value, str)]


def field(items: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in items if key == name), None)


def entity_view(
    request: Request, session: WebSession, env: str, entity: str, purpose: Any, action: str
) -> views.EntityView:
    return views.entity_view(
        workspace(request),
        metastore(request),
        env=env,
        entity=entity,
        principal=session.principal,
        purpose=purpose,
        action=action,
        lang=session.lang,
    )


def query(**params: str | None) -> str:
    return urlencode({key: value for key, value in params.items() if value})

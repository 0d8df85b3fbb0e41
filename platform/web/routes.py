"""Routes of the staff web app under ``/app``: sign-in, navigation, lists, record pages, forms.

Thin routes: reads and writes go through the records service and the access
layer with the viewer's principal (:mod:`formloom.platform.web.views`), forms
through the form engine. Platform errors become HTML pages (a missing session
redirects to the sign-in page); a save's problems are shown next to their fields
with everything the user typed kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from formloom.engine.errors import Issue
from formloom.engine.forms import (
    FORM_RULES_JS,
    Form,
    build_form,
    effective_payload,
    payload_from_form,
    render_form,
)
from formloom.platform import login, records
from formloom.platform.auth import SESSION_COOKIE, Unauthenticated
from formloom.platform.auth_deps import client_ip
from formloom.platform.caller import Caller
from formloom.platform.credentials import SESSION_LIFETIME
from formloom.platform.database import Workspace
from formloom.platform.environments import PRODUCTION
from formloom.platform.errors import PlatformError
from formloom.platform.list_request import ListRequest
from formloom.platform.metastore import MetaStore
from formloom.platform.record_errors import StaleVersion
from formloom.platform.record_query import list_in_environment
from formloom.platform.web import views
from formloom.platform.web.session import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    WebSession,
    check_login_token,
    new_login_token,
    web_session,
)
from formloom.platform.web.texts import LANG_COOKIE, LANGUAGES, request_language, texts_for

HERE = Path(__file__).parent
STATIC_FILES = {
    "htmx.min.js": HERE / "static" / "htmx.min.js",
    "app.css": HERE / "static" / "app.css",
    "form_rules.js": FORM_RULES_JS,
}
PAGE_SIZE = 25
_ONE_YEAR = 365 * 24 * 3600

router = APIRouter(prefix="/app", include_in_schema=False)
templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


# -- plumbing ------------------------------------------------------------------------------------


def _workspace(request: Request) -> Workspace:
    workspace: Workspace = request.app.state.workspace
    return workspace


def _metastore(request: Request) -> MetaStore:
    metastore: MetaStore = request.app.state.metastore
    return metastore


def _page(
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
            _workspace(request),
            _metastore(request),
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


def _guarded(request: Request, lang: str, work: Callable[[], Response]) -> Response:
    """Run a page: no session → the sign-in page; any other platform error → an error page."""
    try:
        return work()
    except Unauthenticated:
        target = request.url.path
        return RedirectResponse(f"/app/login?{urlencode({'next': target})}", status_code=303)
    except PlatformError as exc:
        return _page(
            request,
            "error.html",
            lang=lang,
            status=exc.status,
            message=exc.message,
            issues=[issue.message for issue in exc.issues if issue.message != exc.message],
        )


def _safe_next(target: str | None) -> str:
    """Only paths of this app (no other host) are followed after sign-in or a switch."""
    if target and target.startswith("/app") and not target.startswith("//"):
        return target
    return "/app"


async def _posted(request: Request) -> list[tuple[str, str]]:
    data = await request.form()
    return [(key, value) for key, value in data.multi_items() if isinstance(value, str)]


def _field(items: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in items if key == name), None)


# -- assets, sign-in, language ------------------------------------------------------------------


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
    return _login_form(request, lang, next_url=_safe_next(next), error=None, login_name="")


def _login_form(
    request: Request, lang: str, *, next_url: str, error: str | None, login_name: str
) -> Response:
    token = new_login_token()
    response = _page(
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
    items = await _posted(request)
    next_url = _safe_next(_field(items, "next"))
    login_name = _field(items, "login") or ""
    try:
        check_login_token(request, _field(items, CSRF_FIELD), lang=lang)
        logged_in = await run_in_threadpool(
            lambda: login.log_in(
                _workspace(request),
                login=login_name,
                password=_field(items, "password") or "",
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
    secure = request.url.scheme == "https" or _workspace(request).settings.secure_cookies
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
    items = await _posted(request)

    def work() -> Response:
        session = web_session(request, lang=lang, csrf_token=_field(items, CSRF_FIELD))
        caller = Caller(session.principal, client_ip(request), lang)
        login.log_out(_workspace(request), session.authenticated, caller=caller)
        response = RedirectResponse("/app/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return await run_in_threadpool(_guarded, request, lang, work)


@router.get("/lang/{lang}")
def switch_language(lang: str, next: str | None = None) -> Response:
    """Set the interface language (a preference cookie; it changes no data)."""
    response = RedirectResponse(_safe_next(next), status_code=303)
    if lang in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=_ONE_YEAR, path="/", samesite="lax")
    return response


# -- pages -------------------------------------------------------------------------------------


@router.get("/{env}")
def environment_home(request: Request, env: str) -> Response:
    lang = request_language(request)

    def work() -> Response:
        session = web_session(request, lang=lang)
        return _page(request, "home.html", lang=lang, session=session, env=env)

    return _guarded(request, lang, work)


@router.get("/{env}/{entity}")
def record_list(
    request: Request,
    env: str,
    entity: str,
    q: str | None = None,
    sort: str | None = None,
    after: str | None = None,
) -> Response:
    lang = request_language(request)

    def work() -> Response:
        session = web_session(request, lang=lang)
        view = _entity_view(request, session, env, entity, "view", "read")
        columns = views.list_columns(view)
        listing = ListRequest(
            sort=[sort] if sort else [],
            after=after or None,
            limit=PAGE_SIZE,
            fields=columns,
            search=q or None,
        )
        page = list_in_environment(
            _workspace(request), env, entity, listing, principal=session.principal, lang=lang
        )
        compiled = view.compiled
        rows = [
            {
                "id": item["id"],
                "cells": [views.display_value(compiled, c, item, lang) for c in columns],
            }
            for item in page.items
        ]
        base = f"/app/{env}/{entity}"
        return _page(
            request,
            "list.html",
            lang=lang,
            session=session,
            env=env,
            current_entity=entity,
            entity=entity,
            entity_label=view.label(lang),
            columns=[_column(view, name, lang, base, q, sort) for name in columns],
            rows=rows,
            q=q or "",
            total=page.total,
            may_create=view.access.may(entity, "create"),
            next_url=f"{base}?{_query(q=q, sort=sort, after=page.next)}" if page.next else None,
            first_url=f"{base}?{_query(q=q, sort=sort)}" if after else None,
        )

    return _guarded(request, lang, work)


@router.get("/{env}/{entity}/new")
def new_record_form(request: Request, env: str, entity: str) -> Response:
    lang = request_language(request)

    def work() -> Response:
        session = web_session(request, lang=lang)
        form = _form(request, session, env, entity, None)
        return _form_page(request, session, env, entity, form, None, values=None, errors=[])

    return _guarded(request, lang, work)


@router.post("/{env}/{entity}/new")
async def create_record(request: Request, env: str, entity: str) -> Response:
    lang = request_language(request)
    items = await _posted(request)

    def work() -> Response:
        session = web_session(request, lang=lang, csrf_token=_field(items, CSRF_FIELD))
        return _save(request, session, env, entity, None, items)

    return await run_in_threadpool(_guarded, request, lang, work)


@router.get("/{env}/{entity}/{record_id}")
def record_page(request: Request, env: str, entity: str, record_id: int) -> Response:
    lang = request_language(request)

    def work() -> Response:
        session = web_session(request, lang=lang)
        view = _entity_view(request, session, env, entity, "view", "read")
        workspace, principal = _workspace(request), session.principal
        record = records.get_record(
            workspace, env=env, entity=entity, record_id=record_id, principal=principal, lang=lang
        )
        history = records.record_history(
            workspace, env=env, entity=entity, record_id=record_id, principal=principal, lang=lang
        )
        form = build_form(
            view.compiled,
            view.layout,
            field_modes=view.field_modes,
            record=record,
            lang=lang,
            now=views.business_now(),
            user_id=principal.user_id,
            entities=view.entities,
            env=env,
        )
        return _page(
            request,
            "record.html",
            lang=lang,
            session=session,
            env=env,
            current_entity=entity,
            entity=entity,
            entity_label=view.label(lang),
            record_id=record_id,
            tabs=_record_tabs(form, record, lang),
            history=[_event(view, event, lang) for event in history["items"]],
            may_edit=view.access.may_own(entity, record.get("owner_id"), "update"),
        )

    return _guarded(request, lang, work)


@router.get("/{env}/{entity}/{record_id}/edit")
def edit_record_form(request: Request, env: str, entity: str, record_id: int) -> Response:
    lang = request_language(request)

    def work() -> Response:
        session = web_session(request, lang=lang)
        record = records.get_record(
            _workspace(request),
            env=env,
            entity=entity,
            record_id=record_id,
            principal=session.principal,
            lang=lang,
        )
        form = _form(request, session, env, entity, record)
        return _form_page(request, session, env, entity, form, record_id, values=None, errors=[])

    return _guarded(request, lang, work)


@router.post("/{env}/{entity}/{record_id}/edit")
async def update_record(request: Request, env: str, entity: str, record_id: int) -> Response:
    lang = request_language(request)
    items = await _posted(request)

    def work() -> Response:
        session = web_session(request, lang=lang, csrf_token=_field(items, CSRF_FIELD))
        return _save(request, session, env, entity, record_id, items)

    return await run_in_threadpool(_guarded, request, lang, work)


# -- forms -------------------------------------------------------------------------------------


def _entity_view(
    request: Request, session: WebSession, env: str, entity: str, purpose: Any, action: str
) -> views.EntityView:
    return views.entity_view(
        _workspace(request),
        _metastore(request),
        env=env,
        entity=entity,
        principal=session.principal,
        purpose=purpose,
        action=action,
        lang=session.lang,
    )


def _form(
    request: Request,
    session: WebSession,
    env: str,
    entity: str,
    record: Mapping[str, Any] | None,
) -> Form:
    action = "create" if record is None else "update"
    view = _entity_view(request, session, env, entity, "edit", action)
    return build_form(
        view.compiled,
        view.layout,
        field_modes=view.field_modes,
        record=record,
        lang=session.lang,
        now=views.business_now(),
        user_id=session.principal.user_id,
        entities=view.entities,
        env=env,
    )


def _save(
    request: Request,
    session: WebSession,
    env: str,
    entity: str,
    record_id: int | None,
    items: list[tuple[str, str]],
) -> Response:
    """Check the post against the form as shown, save it, or show the form again with errors."""
    workspace, principal, lang = _workspace(request), session.principal, session.lang
    stored = None
    if record_id is not None:
        stored = records.get_record(
            workspace, env=env, entity=entity, record_id=record_id, principal=principal, lang=lang
        )
    form = _form(request, session, env, entity, stored)
    payload = payload_from_form(form, items)
    to_save, issues = effective_payload(form, payload, lang=lang)
    if issues:
        return _form_page(
            request, session, env, entity, form, record_id, values=payload, errors=issues
        )
    try:
        if record_id is None:
            saved = records.create_record(
                workspace, env=env, entity=entity, payload=to_save, principal=principal, lang=lang
            )
        else:
            saved = records.update_record(
                workspace,
                env=env,
                entity=entity,
                record_id=record_id,
                payload=to_save,
                principal=principal,
                lang=lang,
            )
    except StaleVersion:
        assert record_id is not None
        return _conflict_page(request, session, env, entity, record_id, payload)
    except PlatformError as exc:
        if exc.status != 422 and exc.code != "duplicate_warning":
            raise
        errors = exc.issues or [Issue("", exc.code, exc.message)]
        return _form_page(
            request, session, env, entity, form, record_id, values=payload, errors=errors
        )
    return RedirectResponse(f"/app/{env}/{entity}/{saved['id']}", status_code=303)


def _conflict_page(
    request: Request,
    session: WebSession,
    env: str,
    entity: str,
    record_id: int,
    payload: dict[str, Any],
) -> Response:
    """The form again on the record as it is now, the user's input kept, the new values listed."""
    lang = session.lang
    current = records.get_record(
        _workspace(request),
        env=env,
        entity=entity,
        record_id=record_id,
        principal=session.principal,
        lang=lang,
    )
    form = _form(request, session, env, entity, current)
    theirs = [
        (form.fields[name].label, views.display_value(form.entity, name, current, lang))
        for name in form.fields
        if name in payload and payload[name] != current.get(name)
    ]
    values = {**payload, "version": current["version"]}
    return _form_page(
        request,
        session,
        env,
        entity,
        form,
        record_id,
        values=values,
        errors=[],
        status=409,
        conflict={"version": current["version"], "theirs": theirs},
    )


def _form_page(
    request: Request,
    session: WebSession,
    env: str,
    entity: str,
    form: Form,
    record_id: int | None,
    *,
    values: Mapping[str, Any] | None,
    errors: list[Issue],
    status: int | None = None,
    conflict: Mapping[str, Any] | None = None,
) -> Response:
    lang = session.lang
    base = f"/app/{env}/{entity}"
    action = f"{base}/new" if record_id is None else f"{base}/{record_id}/edit"
    html = render_form(
        form,
        values=values,
        errors=[issue.as_dict() for issue in errors],
        csrf_token=session.csrf_token,
        action_url=action,
        lang=lang,
    )
    label = form.entity.document.label
    entity_label = label.zh if lang == "zh" else label.en
    t = texts_for(lang)
    title = (
        t["new_record"].format(entity=entity_label)
        if record_id is None
        else t["edit_record"].format(entity=entity_label, id=record_id)
    )
    return _page(
        request,
        "edit.html",
        lang=lang,
        status=status or (422 if errors else 200),
        session=session,
        env=env,
        current_entity=entity,
        title=title,
        form_html=html,
        cancel_url=base if record_id is None else f"{base}/{record_id}",
        conflict=conflict,
    )


# -- page parts --------------------------------------------------------------------------------


def _query(**params: str | None) -> str:
    return urlencode({key: value for key, value in params.items() if value})


def _column(
    view: views.EntityView, name: str, lang: str, base: str, q: str | None, sort: str | None
) -> dict[str, Any]:
    field = view.compiled.fields[name]
    sortable = field.field_type.name in views.SORTABLE_TYPES
    descending = sort == name
    wanted = f"-{name}" if descending else name
    return {
        "name": name,
        "label": field.label(lang),
        "sort_url": f"{base}?{_query(q=q, sort=wanted)}" if sortable else None,
        "sorted": "asc" if sort == name else "desc" if sort == f"-{name}" else None,
    }


def _record_tabs(form: Form, record: Mapping[str, Any], lang: str) -> list[dict[str, Any]]:
    state = form.state
    return [
        {
            "label": tab.label,
            "sections": [
                {
                    "label": section.label,
                    "columns": section.columns,
                    "fields": [
                        {
                            "label": form.fields[name].label,
                            "span": form.fields[name].span,
                            "value": views.display_value(form.entity, name, record, lang),
                        }
                        for name in section.fields
                        if state.fields[name].visible
                    ],
                }
                for section in tab.sections
            ],
        }
        for tab in form.tabs
    ]


def _event(view: views.EntityView, event: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """An audit entry for the timeline: an update's changes are ``[before, after]`` pairs."""
    action = str(event.get("action", ""))
    changes = event.get("changes")
    shown: list[tuple[str, str]] = []
    if isinstance(changes, Mapping):
        for name, change in changes.items():
            if name not in view.compiled.fields:
                continue
            after = change[1] if action == "update" and isinstance(change, list) else change
            text = views.display_value(view.compiled, name, {name: after}, lang)
            shown.append((view.compiled.fields[name].label(lang), text))
    return {
        "action": texts_for(lang).get(f"action_{action}", action),
        "at": str(event.get("at", ""))[:19].replace("T", " "),
        "actor": event.get("actor"),
        "changes": shown,
    }

"""Routes of the staff web app under ``/app``: the environment home, record pages and forms.

Thin routes: reads and writes go through the records service and the access
layer with the viewer's principal (:mod:`formloom.platform.web.views`), forms
through the form engine. Platform errors become HTML pages (a missing session
redirects to the sign-in page); a save's problems are shown next to their fields
with everything the user typed kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from formloom.engine.errors import Issue
from formloom.engine.forms import (
    Form,
    build_form,
    effective_payload,
    payload_from_form,
    render_form,
)
from formloom.platform import records
from formloom.platform.errors import PlatformError
from formloom.platform.flow_view import approval_field_modes
from formloom.platform.record_errors import StaleVersion
from formloom.platform.web import approvals, pages, related, views
from formloom.platform.web.session import (
    CSRF_FIELD,
    WebSession,
    web_session,
)
from formloom.platform.web.texts import request_language, texts_for

#: The posted field of the "Save anyway" button shown with a duplicate warning.
CONFIRM_DUPLICATES = "confirm_duplicates"

router = APIRouter(prefix="/app", include_in_schema=False)


# -- pages -------------------------------------------------------------------------------------


@router.get("/{env}")
def environment_home(request: Request, env: str) -> Response:
    lang = request_language(request)

    def work() -> Response:
        session = web_session(request, lang=lang)
        return pages.page(request, "home.html", lang=lang, session=session, env=env)

    return pages.guarded(request, lang, work)


@router.get("/{env}/{entity}/new")
def new_record_form(request: Request, env: str, entity: str) -> Response:
    lang = request_language(request)

    def work() -> Response:
        session = web_session(request, lang=lang)
        form = _form(request, session, env, entity, None)
        values = related.prefill(request, session, env, form)
        return _form_page(request, session, env, entity, form, None, values=values, errors=[])

    return pages.guarded(request, lang, work)


@router.post("/{env}/{entity}/new")
async def create_record(request: Request, env: str, entity: str) -> Response:
    lang = request_language(request)
    items = await pages.posted(request)

    def work() -> Response:
        session = web_session(request, lang=lang, csrf_token=pages.field(items, CSRF_FIELD))
        return _save(request, session, env, entity, None, items)

    return await run_in_threadpool(pages.guarded, request, lang, work)


@router.get("/{env}/{entity}/{record_id:int}")
def record_page(request: Request, env: str, entity: str, record_id: int) -> Response:
    lang = request_language(request)

    def work() -> Response:
        session = web_session(request, lang=lang)
        view = pages.entity_view(request, session, env, entity, "view", "read")
        workspace, principal = pages.workspace(request), session.principal
        record = records.get_record(
            workspace, env=env, entity=entity, record_id=record_id, principal=principal, lang=lang
        )
        record = related.with_titles(request, session, env, entity, record)
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
        return pages.page(
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
            approval=approvals.record_panel(request, session, env, view, record),
            related=related.record_panel(request, session, env, view, record),
        )

    return pages.guarded(request, lang, work)


@router.get("/{env}/{entity}/{record_id:int}/edit")
def edit_record_form(request: Request, env: str, entity: str, record_id: int) -> Response:
    lang = request_language(request)

    def work() -> Response:
        session = web_session(request, lang=lang)
        record = records.get_record(
            pages.workspace(request),
            env=env,
            entity=entity,
            record_id=record_id,
            principal=session.principal,
            lang=lang,
        )
        record = related.with_titles(request, session, env, entity, record)
        form = _form(request, session, env, entity, record)
        return _form_page(request, session, env, entity, form, record_id, values=None, errors=[])

    return pages.guarded(request, lang, work)


@router.post("/{env}/{entity}/{record_id:int}/edit")
async def update_record(request: Request, env: str, entity: str, record_id: int) -> Response:
    lang = request_language(request)
    items = await pages.posted(request)

    def work() -> Response:
        session = web_session(request, lang=lang, csrf_token=pages.field(items, CSRF_FIELD))
        return _save(request, session, env, entity, record_id, items)

    return await run_in_threadpool(pages.guarded, request, lang, work)


# -- forms -------------------------------------------------------------------------------------


def _form(
    request: Request,
    session: WebSession,
    env: str,
    entity: str,
    record: Mapping[str, Any] | None,
) -> Form:
    action = "create" if record is None else "update"
    view = pages.entity_view(request, session, env, entity, "edit", action)
    node_permissions = None
    if record is not None:
        # a record in approval: only what the viewer's own step lets them change is editable
        in_approval = approval_field_modes(
            pages.workspace(request),
            env=env,
            entity=entity,
            record_id=int(record["id"]),
            principal=session.principal,
            lang=session.lang,
        )
        if in_approval is not None:
            node_permissions = {n: in_approval.get(n, "hidden") for n in view.compiled.fields}
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
        node_permissions=node_permissions,
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
    workspace, principal, lang = pages.workspace(request), session.principal, session.lang
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
    # "Save anyway" after a duplicate warning (the form's own button, see edit.html)
    confirmed = pages.field(items, CONFIRM_DUPLICATES) == "1"
    try:
        if record_id is None:
            saved = records.create_record(
                workspace,
                env=env,
                entity=entity,
                payload=to_save,
                principal=principal,
                lang=lang,
                confirm_duplicates=confirmed,
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
                confirm_duplicates=confirmed,
            )
    except StaleVersion:
        assert record_id is not None
        return _conflict_page(request, session, env, entity, record_id, payload)
    except PlatformError as exc:
        warned = exc.code == "duplicate_warning"
        if exc.status != 422 and not warned:
            raise
        errors = exc.issues or [Issue("", exc.code, exc.message)]
        return _form_page(
            request,
            session,
            env,
            entity,
            form,
            record_id,
            values=payload,
            errors=errors,
            status=exc.status,
            duplicates=warned,
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
        pages.workspace(request),
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
    duplicates: bool = False,
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
    return pages.page(
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
        duplicates=duplicates,
        confirm_field=CONFIRM_DUPLICATES,
    )


# -- page parts --------------------------------------------------------------------------------


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

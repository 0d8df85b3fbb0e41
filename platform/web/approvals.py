"""Approval pages of the staff web app: the inbox, an approval's page, the record page's panel.

Every read and every action goes through the approval services the REST API
calls (:mod:`~formloom.platform.flow_inbox`, :mod:`~formloom.platform.flow_submit`,
:mod:`~formloom.platform.flow_tasks`, :mod:`~formloom.platform.flow_instances`)
with the viewer's principal, so the services decide who may see and do what;
a forged post gets the service's error. The pages only choose which forms to
offer (a viewer's pending tasks, the submitter's withdraw and remind) so that
nobody is shown an action they cannot take; the panel itself is built by
:mod:`~formloom.platform.web.approval_panel`.

Routes live under ``/app/{env}/-/`` (``-`` is never an entity name). Posts carry
the session's CSRF token and redirect back (PRG); a 409 (someone acted first)
or a 422 (a comment is missing) shows the approval page again with the
service's message next to the form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from formloom.platform import flow_inbox, users
from formloom.platform.caller import PLATFORM_CALLER
from formloom.platform.errors import PlatformError
from formloom.platform.flow_instances import InstanceAction, act_on_instance
from formloom.platform.flow_submit import submit
from formloom.platform.flow_tasks import TaskAction, act_on_task
from formloom.platform.identity import display_name
from formloom.platform.web import pages, views
from formloom.platform.web.approval_panel import (
    INSTANCE_ACTIONS,
    FlowFacts,
    People,
    display_time,
    empty_panel,
    instance_panel,
    label_of,
    record_rows,
    status_label,
    submit_form,
)
from formloom.platform.web.session import CSRF_FIELD, WebSession, web_session
from formloom.platform.web.texts import request_language, texts_for

router = APIRouter(prefix="/app", include_in_schema=False)

INBOX_PAGE = 25
#: The people pickers list at most this many users (one page of the users service).
PEOPLE_LIMIT = 500
TASK_ACTIONS = ("approve", "reject", "complete", "return", "transfer", "add_approver", "resubmit")


@dataclass(frozen=True)
class FormError:
    """A refused action, shown next to its form (``form``) with what the user typed."""

    form: str
    message: str
    comment: str = ""


# -- pages -------------------------------------------------------------------------------------


@router.get("/{env}/-/inbox")
def inbox_page(
    request: Request, env: str, box: str = "pending", after: int | None = None
) -> Response:
    lang = request_language(request)

    def work() -> Response:
        session = web_session(request, lang=lang)
        shown = box if box in flow_inbox.BOXES else "pending"
        found = flow_inbox.inbox(
            pages.workspace(request),
            env=env,
            principal=session.principal,
            box=shown,
            limit=INBOX_PAGE,
            after=after,
            lang=lang,
        )
        people = _people(request, lang)
        labels = _entity_labels(request, env, lang)
        base = f"/app/{env}/-/inbox"
        return pages.page(
            request,
            "inbox.html",
            lang=lang,
            session=session,
            env=env,
            box=shown,
            boxes=[(name, f"{base}?box={name}") for name in flow_inbox.BOXES],
            rows=[_inbox_row(env, item, shown, people, labels, lang) for item in found["items"]],
            next_url=f"{base}?{urlencode({'box': shown, 'after': found['next']})}"
            if found["next"]
            else None,
            first_url=f"{base}?box={shown}" if after else None,
        )

    return pages.guarded(request, lang, work)


@router.get("/{env}/-/inbox/count")
def inbox_count(request: Request, env: str) -> Response:
    """The pending count for the link in the menu (loaded by htmx; empty when signed out)."""
    lang = request_language(request)
    try:
        session = web_session(request, lang=lang)
        found = flow_inbox.inbox(
            pages.workspace(request),
            env=env,
            principal=session.principal,
            box="pending",
            limit=flow_inbox.MAX_LIMIT,
            lang=lang,
        )
    except PlatformError:
        return HTMLResponse("")
    count = len(found["items"])
    shown = f"{count}+" if found["next"] else str(count)
    text = texts_for(lang)["ap_pending_count"].format(n=shown)
    html = pages.templates.from_string(
        '<span class="ap-badge{{ " ap-zero" if zero }}" title="{{ text }}">{{ shown }}</span>'
    ).render(zero=count == 0, text=text, shown=shown)
    return HTMLResponse(html)


@router.get("/{env}/-/approvals/{instance_id:int}")
def approval_page(request: Request, env: str, instance_id: int) -> Response:
    lang = request_language(request)

    def work() -> Response:
        session = web_session(request, lang=lang)
        notice = _notice(request, lang)
        return _approval_response(request, session, env, instance_id, notice=notice)

    return pages.guarded(request, lang, work)


@router.post("/{env}/-/approvals/{instance_id:int}/tasks/{task_id:int}/{action}")
async def task_action(
    request: Request, env: str, instance_id: int, task_id: int, action: str
) -> Response:
    lang = request_language(request)
    items = await pages.posted(request)

    def work() -> Response:
        session = web_session(request, lang=lang, csrf_token=pages.field(items, CSRF_FIELD))

        def run() -> None:
            act_on_task(
                pages.workspace(request),
                env=env,
                task_id=task_id,
                action=action,
                request=_task_request(items),
                principal=session.principal,
                lang=lang,
            )

        form = f"task-{task_id}-{_form_of(action)}"
        return _acted(request, session, env, instance_id, items, action, form, run)

    return await run_in_threadpool(pages.guarded, request, lang, work)


@router.post("/{env}/-/approvals/{instance_id:int}/{action}")
async def instance_action(request: Request, env: str, instance_id: int, action: str) -> Response:
    lang = request_language(request)
    items = await pages.posted(request)

    def work() -> Response:
        session = web_session(request, lang=lang, csrf_token=pages.field(items, CSRF_FIELD))

        def run() -> None:
            act_on_instance(
                pages.workspace(request),
                env=env,
                instance_id=instance_id,
                action=action,
                request=InstanceAction(comment=_comment(items)),
                principal=session.principal,
                lang=lang,
            )

        form = f"instance-{action}"
        return _acted(request, session, env, instance_id, items, action, form, run)

    return await run_in_threadpool(pages.guarded, request, lang, work)


@router.post("/{env}/-/submit/{entity}/{record_id:int}")
async def submit_record(request: Request, env: str, entity: str, record_id: int) -> Response:
    lang = request_language(request)
    items = await pages.posted(request)

    def work() -> Response:
        session = web_session(request, lang=lang, csrf_token=pages.field(items, CSRF_FIELD))
        record_url = f"/app/{env}/{entity}/{record_id}"
        try:
            submit(
                pages.workspace(request),
                env=env,
                entity=entity,
                record_id=record_id,
                principal=session.principal,
                flow=pages.field(items, "flow") or None,
                approvers=_chosen(items, "approvers:"),
                comment=_comment(items),
                via="manual",
                lang=lang,
            )
        except (ValidationError, ValueError):
            error = FormError("submit", texts_for(lang)["ap_bad_input"], _comment(items) or "")
            return _submit_error(request, session, env, entity, record_id, error, 422)
        except PlatformError as exc:
            if exc.status not in (409, 422):
                raise
            error = FormError("submit", _message(exc, lang), _comment(items) or "")
            return _submit_error(request, session, env, entity, record_id, error, exc.status)
        return RedirectResponse(f"{record_url}?done=submit", status_code=303)

    return await run_in_threadpool(pages.guarded, request, lang, work)


def record_panel(
    request: Request,
    session: WebSession,
    env: str,
    view: views.EntityView,
    record: Mapping[str, Any],
) -> Mapping[str, Any] | None:
    """The record's approval status, history and actions, and the "submit" form when a flow
    applies and the viewer may submit (None: the record has neither approvals nor a flow)."""
    entity, record_id, lang = view.compiled.name, int(record["id"]), session.lang
    workspace, principal = pages.workspace(request), session.principal
    status = flow_inbox.record_approvals(
        workspace, env=env, entity=entity, record_id=record_id, principal=principal, lang=lang
    )
    submit_options = None
    if not status["locked"] and view.access.may_own(entity, record.get("owner_id"), "update"):
        submit_options = submit_form(request, session, env, entity, record_id)
    if not status["instances"] and submit_options is None:
        return None
    here = f"/app/{env}/{entity}/{record_id}"
    people = _people(request, lang)
    panel: dict[str, Any] = empty_panel(session, env, entity, record_id, here, people)
    panel.update(submit=submit_options, notice=_notice(request, lang))
    if status["instances"]:
        latest, *earlier = status["instances"]
        panel.update(instance_panel(request, session, env, latest, people))
        panel.pop("facts")
        panel["earlier"] = [
            (i["id"], status_label(i["status"], lang), f"/app/{env}/-/approvals/{i['id']}")
            for i in earlier
        ]
    return panel


# -- the approval page -------------------------------------------------------------------------


def _approval_response(
    request: Request,
    session: WebSession,
    env: str,
    instance_id: int,
    *,
    status: int = 200,
    notice: str | None = None,
    error: FormError | None = None,
) -> Response:
    lang = session.lang
    detail = flow_inbox.instance_detail(
        pages.workspace(request),
        env=env,
        instance_id=instance_id,
        principal=session.principal,
        lang=lang,
    )
    people = _people(request, lang)
    here = f"/app/{env}/-/approvals/{instance_id}"
    panel = empty_panel(session, env, detail["entity"], detail["record_id"], here, people)
    panel.update(instance_panel(request, session, env, detail, people))
    panel.update(notice=notice, error=error, error_top=_unplaced(panel, error))
    facts: FlowFacts = panel.pop("facts")
    entity_label = _entity_labels(request, env, lang).get(detail["entity"], detail["entity"])
    return pages.page(
        request,
        "approval.html",
        lang=lang,
        status=status,
        session=session,
        env=env,
        title=texts_for(lang)["ap_title"].format(id=instance_id, flow=detail["flow_label"]),
        record_label=texts_for(lang)["record"].format(entity=entity_label, id=detail["record_id"]),
        record_url=f"/app/{env}/{detail['entity']}/{detail['record_id']}",
        record_rows=record_rows(facts.entity, detail["record"], lang),
        approval=panel,
    )


def _acted(
    request: Request,
    session: WebSession,
    env: str,
    instance_id: int,
    items: list[tuple[str, str]],
    action: str,
    form: str,
    run: Callable[[], None],
) -> Response:
    """Run an action; redirect back (PRG), or show the page again with a 409 or 422's message.

    Other refusals (403 not yours, 404) are the app's error page with the service's message.
    """
    lang = session.lang
    try:
        run()
    except (ValidationError, ValueError):
        error = FormError(form, texts_for(lang)["ap_bad_input"], _comment(items) or "")
        return _approval_response(request, session, env, instance_id, status=422, error=error)
    except PlatformError as exc:
        if exc.status not in (409, 422):
            raise
        error = FormError(form, _message(exc, lang), _comment(items) or "")
        return _approval_response(
            request, session, env, instance_id, status=exc.status, error=error
        )
    back = pages.safe_next(pages.field(items, "next") or f"/app/{env}/-/approvals/{instance_id}")
    if back == "/app":
        back = f"/app/{env}/-/approvals/{instance_id}"
    joiner = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{joiner}{urlencode({'done': action})}", status_code=303)


def _submit_error(
    request: Request,
    session: WebSession,
    env: str,
    entity: str,
    record_id: int,
    error: FormError,
    status: int,
) -> Response:
    """The submit form again on a page of its own, with the service's reason."""
    lang = session.lang
    here = f"/app/{env}/{entity}/{record_id}"
    people = _people(request, lang)
    panel = empty_panel(session, env, entity, record_id, here, people)
    panel.update(submit=submit_form(request, session, env, entity, record_id))
    panel.update(error=error, error_top=_unplaced(panel, error))
    entity_label = _entity_labels(request, env, lang).get(entity, entity)
    record_label = texts_for(lang)["record"].format(entity=entity_label, id=record_id)
    return pages.page(
        request,
        "approval.html",
        lang=lang,
        status=status,
        session=session,
        env=env,
        title=texts_for(lang)["ap_submit_title"].format(record=record_label),
        record_label=record_label,
        record_url=here,
        record_rows=[],
        approval=panel,
    )


def _unplaced(panel: Mapping[str, Any], error: FormError | None) -> FormError | None:
    """The error when the page has no form to show it next to (the task was decided by
    someone else, the flow no longer applies): it goes at the top of the page."""
    if error is None:
        return None
    forms = {"submit"} if panel["submit"] else set()
    for task in panel["tasks"]:
        key = f"task-{task['id']}"
        if task["kind"] == "resubmit":
            forms.add(f"{key}-resubmit")
            continue
        forms.add(f"{key}-decide")
        if task["may_delegate"] and panel["users"]:
            forms |= {f"{key}-transfer", f"{key}-add_approver"}
        if task["returns"]:
            forms.add(f"{key}-return")
    forms |= {f"instance-{name}" for name, shown in panel["may"].items() if shown}
    return None if error.form in forms else error


# -- reading the organisation and the metadata -------------------------------------------------


def _people(request: Request, lang: str) -> People:
    """Names of users for timelines and pickers, read through the users service.

    The platform reads the directory (a sales rep choosing an approver is no user
    manager); only ids and display names reach the page.
    """
    found = users.list_users(
        pages.workspace(request), users.UserQuery(limit=PEOPLE_LIMIT), caller=PLATFORM_CALLER
    )
    names: dict[int, str] = {}
    active: list[tuple[int, str]] = []
    for item in found["items"]:
        shown = display_name(item["display_name"]["en"], item["display_name"]["zh"], lang)
        names[item["id"]] = shown or item["login"]
        if item["active"]:
            active.append((item["id"], names[item["id"]]))
    return People(names, sorted(active, key=lambda person: person[1].casefold()))


def _entity_labels(request: Request, env: str, lang: str) -> dict[str, str]:
    bodies = pages.metastore(request).published(env, "entity").get("entity", {})
    return {name: label_of(body.get("label"), lang) or name for name, body in bodies.items()}


def _inbox_row(
    env: str,
    item: Mapping[str, Any],
    box: str,
    people: People,
    labels: Mapping[str, str],
    lang: str,
) -> dict[str, Any]:
    t = texts_for(lang)
    instance = item if box == "submitted" else item["instance"]
    entity, record_id = instance["entity"], instance["record_id"]
    step = "" if box == "submitted" else (item["node_label"] or item["node_id"])
    return {
        "flow": instance["flow_label"],
        "record": t["record"].format(entity=labels.get(entity, entity), id=record_id),
        "record_url": f"/app/{env}/{entity}/{record_id}",
        "url": f"/app/{env}/-/approvals/{instance['id']}",
        "step": step,
        "status": status_label(instance["status"], lang),
        "task": "" if box == "submitted" else t.get(f"ap_task_{item['status']}", item["status"]),
        "submitter": people.name(instance["submitter_id"]),
        "at": display_time(instance["created_at"] if box == "submitted" else item["created_at"]),
    }


# -- reading posts -----------------------------------------------------------------------------


def _task_request(items: list[tuple[str, str]]) -> TaskAction:
    """The service's request from a form post (ValueError or ValidationError when malformed)."""
    rev = pages.field(items, "rev")
    user = pages.field(items, "user")
    return TaskAction.model_validate(
        {
            "comment": _comment(items),
            "rev": int(rev) if rev else None,
            "to": pages.field(items, "to") or None,
            "user": int(user) if user else None,
            "users": [int(value) for key, value in items if key == "users" and value],
            "position": pages.field(items, "position") or None,
            "approvers": _chosen(items, "approvers:"),
            "next_approvers": _chosen(items, "next:"),
        }
    )


def _chosen(items: list[tuple[str, str]], prefix: str) -> dict[str, list[int]]:
    """``approvers:<step>`` fields (one per chosen user) as the service's step → user ids."""
    chosen: dict[str, list[int]] = {}
    for key, value in items:
        if key.startswith(prefix) and value:
            chosen.setdefault(key.removeprefix(prefix), []).append(int(value))
    return chosen


def _comment(items: list[tuple[str, str]]) -> str | None:
    comment = pages.field(items, "comment")
    return comment.strip() or None if comment is not None else None


def _form_of(action: str) -> str:
    """Approve and reject share one form (and its comment)."""
    return "decide" if action in ("approve", "reject", "complete") else action


def _message(exc: PlatformError, lang: str) -> str:
    """The service's message; a conflict says first that someone else acted first."""
    message = exc.issues[0].message if exc.issues else exc.message
    if exc.status == 409:
        return f"{texts_for(lang)['ap_conflict']} {message}"
    return message


def _notice(request: Request, lang: str) -> str | None:
    done = request.query_params.get("done")
    if done not in (*TASK_ACTIONS, *INSTANCE_ACTIONS, "submit"):
        return None
    return texts_for(lang)[f"ap_done_{done}"]

"""Approval pages of the staff web app: the inbox, an approval's page, the record page's panel.

Every read and every action goes through the approval services the REST API
calls (:mod:`~formloom.platform.flow_inbox`, :mod:`~formloom.platform.flow_submit`,
:mod:`~formloom.platform.flow_tasks`, :mod:`~formloom.platform.flow_instances`)
with the viewer's principal, so the services decide who may see and do what;
a forged post gets the service's error. The pages only choose which forms to
offer (a viewer's pending tasks, the submitter's withdraw and remind) so that
nobody is shown an action they cannot take.

Routes live under ``/app/{env}/-/`` (``-`` is never an entity name). Posts carry
the session's CSRF token and redirect back (PRG); a 409 (someone acted first)
or a 422 (a comment is missing) shows the approval page again with the
service's message next to the form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from formloom.engine.flows import CompiledFlow, return_targets
from formloom.engine.flows.approvers import PreviousApproverChoiceSource, SubmitterChoiceSource
from formloom.engine.flows.model import ApproverNode, CcNode, HandlerNode
from formloom.engine.records.compiled import CompiledEntity
from formloom.platform import flow_inbox, users
from formloom.platform.access import load_access
from formloom.platform.caller import PLATFORM_CALLER
from formloom.platform.entity_runtime import load_entity
from formloom.platform.errors import PlatformError
from formloom.platform.flow_choices import required_choices
from formloom.platform.flow_definitions import pinned_flow, published_flows
from formloom.platform.flow_errors import ApprovalInvalid
from formloom.platform.flow_instances import InstanceAction, act_on_instance
from formloom.platform.flow_runtime import approval_transaction
from formloom.platform.flow_submit import choose_flow, submit
from formloom.platform.flow_tasks import TaskAction, act_on_task
from formloom.platform.identity import display_name
from formloom.platform.record_context import WriteContext
from formloom.platform.web import pages, views
from formloom.platform.web.session import CSRF_FIELD, WebSession, web_session
from formloom.platform.web.texts import request_language, texts_for

router = APIRouter(prefix="/app", include_in_schema=False)

INBOX_PAGE = 25
#: The people pickers list at most this many users (one page of the users service).
PEOPLE_LIMIT = 500
TASK_ACTIONS = ("approve", "reject", "complete", "return", "transfer", "add_approver", "resubmit")
INSTANCE_ACTIONS = ("withdraw", "remind", "comment")
#: Timeline actions that count as an approver's decision (withdraw ``before_decision``).
DECISIONS = ("approve", "reject", "return")


@dataclass(frozen=True)
class People:
    """Users by id for names in timelines, and the active ones for the pickers."""

    names: Mapping[int, str]
    active: Sequence[tuple[int, str]]

    def name(self, user_id: int | None) -> str:
        if user_id is None:
            return ""
        return self.names.get(user_id, f"#{user_id}")


@dataclass(frozen=True)
class FlowFacts:
    """What the pages read of an instance's pinned flow version: labels, returns, rules."""

    flow: CompiledFlow
    entity: CompiledEntity

    def node_label(self, node_id: str | None, lang: str) -> str:
        node = self.flow.graph.nodes.get(node_id or "")
        if node is None:
            return node_id or ""
        return node.label.zh if lang == "zh" else node.label.en

    def returns(self, node_id: str, passed: set[str], lang: str) -> list[tuple[str, str]]:
        """The steps the task's step may return to that the instance passed (as the service)."""
        start = self.flow.graph.start
        allowed = [t for t in return_targets(self.flow, node_id) if t == start or t in passed]
        return [(target, self.node_label(target, lang)) for target in allowed]

    def comment_required(self, node_id: str) -> bool:
        node = self.flow.graph.nodes.get(node_id)
        return isinstance(node, ApproverNode) and node.comment_required_on_reject

    def choice(self, node_id: str, kind: type[Any], lang: str) -> dict[str, Any] | None:
        """A picker for the step when a ``kind`` choice source names its people, else None."""
        node = self.flow.graph.nodes.get(node_id)
        sources: list[Any] = []
        if isinstance(node, ApproverNode | HandlerNode):
            sources = list(node.assignees)
        elif isinstance(node, CcNode):
            sources = list(node.recipients)
        found = next((source for source in sources if isinstance(source, kind)), None)
        if found is None:
            return None
        return {
            "node": node_id,
            "label": self.node_label(node_id, lang),
            "multiple": found.multiple,
        }

    def next_choices(self, node_id: str, lang: str) -> list[dict[str, Any]]:
        """Pickers for the steps after ``node_id`` (up to the next people's steps) whose people
        its approver chooses (上一节点审批人指定); the service checks what is sent."""
        seen: list[str] = []
        queue = list(self.flow.graph.forward.successors(node_id))
        while queue:
            current = queue.pop(0)
            if current in seen:
                continue
            seen.append(current)
            if not isinstance(self.flow.graph.nodes.get(current), ApproverNode | HandlerNode):
                queue += list(self.flow.graph.forward.successors(current))
        pickers = [self.choice(n, PreviousApproverChoiceSource, lang) for n in seen]
        return [picker for picker in pickers if picker is not None]


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
    submit_form = None
    if not status["locked"] and view.access.may_own(entity, record.get("owner_id"), "update"):
        submit_form = _submit_form(request, session, env, entity, record_id)
    if not status["instances"] and submit_form is None:
        return None
    here = f"/app/{env}/{entity}/{record_id}"
    people = _people(request, lang)
    panel: dict[str, Any] = _empty_panel(session, env, entity, record_id, here, people)
    panel.update(submit=submit_form, notice=_notice(request, lang))
    if status["instances"]:
        latest, *earlier = status["instances"]
        panel.update(_instance_panel(request, session, env, latest, people))
        panel.pop("facts")
        panel["earlier"] = [
            (i["id"], _status_label(i["status"], lang), f"/app/{env}/-/approvals/{i['id']}")
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
    panel = _empty_panel(session, env, detail["entity"], detail["record_id"], here, people)
    panel.update(_instance_panel(request, session, env, detail, people))
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
        record_rows=_record_rows(facts.entity, detail["record"], lang),
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
    panel = _empty_panel(session, env, entity, record_id, here, people)
    panel.update(submit=_submit_form(request, session, env, entity, record_id))
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


# -- what a panel shows ------------------------------------------------------------------------


def _empty_panel(
    session: WebSession, env: str, entity: str, record_id: int, here: str, people: People
) -> dict[str, Any]:
    me = session.principal.user_id
    return {
        "env": env,
        "entity": entity,
        "record_id": record_id,
        "record_url": f"/app/{env}/{entity}/{record_id}",
        "next": here,
        "csrf": session.csrf_token,
        "instance": None,
        "current": [],
        "timeline": [],
        "tasks": [],
        "may": dict.fromkeys(INSTANCE_ACTIONS, False),
        "earlier": [],
        "submit": None,
        "users": [(uid, name) for uid, name in people.active if uid != me],
        "notice": None,
        "error": None,
        "error_top": None,
    }


def _instance_panel(
    request: Request,
    session: WebSession,
    env: str,
    instance: Mapping[str, Any],
    people: People,
) -> dict[str, Any]:
    """An instance's status, current steps, timeline, and the forms the viewer may use."""
    lang, t = session.lang, texts_for(session.lang)
    facts = _flow_facts(request, env, instance)
    running = instance["status"] == "running"
    me = session.principal.user_id
    passed = {t_["node_id"] for t_ in instance["tasks"]}
    passed |= {e["node_id"] for e in instance["timeline"] if e["node_id"]}
    mine = [
        task
        for task in instance["tasks"]
        if running and task["assignee_id"] == me and task["status"] == "pending"
    ]
    return {
        "facts": facts,
        "instance": {
            "id": instance["id"],
            "status": instance["status"],
            "status_label": _status_label(instance["status"], lang),
            "flow_label": instance["flow_label"],
            "submitter": people.name(instance["submitter_id"]),
            "created_at": _when(instance["created_at"]),
            "finished_at": _when(instance["finished_at"]) if instance["finished_at"] else None,
            "url": f"/app/{env}/-/approvals/{instance['id']}",
            "action_base": f"/app/{env}/-/approvals/{instance['id']}",
        },
        "current": [
            {
                "label": step["label"] or step["node_id"],
                "people": [
                    (people.name(task["assignee_id"]), t.get(f"ap_task_{task['status']}", ""))
                    for task in step["tasks"]
                ],
            }
            for step in instance["current"]
        ],
        "timeline": [_timeline_entry(event, facts, people, lang) for event in instance["timeline"]],
        "tasks": [_task_form(task, facts, passed, lang) for task in mine],
        "may": _instance_actions(session, instance, facts)
        if running
        else dict.fromkeys(INSTANCE_ACTIONS, False),
    }


def _task_form(
    task: Mapping[str, Any], facts: FlowFacts, passed: set[str], lang: str
) -> dict[str, Any]:
    """A pending task of the viewer and the actions its kind takes (as the service's kinds)."""
    kind = task["kind"]
    returns = facts.returns(task["node_id"], passed, lang) if kind in ("approve", "handle") else []
    return {
        "id": task["id"],
        "rev": task["rev"],
        "kind": kind,
        "step": task["node_label"] or task["node_id"],
        "comment_required": kind == "approve" and facts.comment_required(task["node_id"]),
        "returns": returns,
        "next_choices": facts.next_choices(task["node_id"], lang) if kind == "approve" else [],
        "may_delegate": kind in ("approve", "handle"),
    }


def _instance_actions(
    session: WebSession, instance: Mapping[str, Any], facts: FlowFacts
) -> dict[str, bool]:
    """Which instance actions to offer: the rules of ``flow_instances``, for display only."""
    principal = session.principal
    me = principal.user_id
    submitter = instance["submitter_id"] == me
    admin = principal.admin or facts.flow.document.admin == me
    participant = submitter or any(task["assignee_id"] == me for task in instance["tasks"])
    policy = facts.flow.document.withdraw
    decided = _decided(instance["timeline"])
    return {
        "withdraw": submitter
        and (policy == "while_running" or (policy == "before_decision" and not decided)),
        "remind": (submitter or admin) and bool(instance["current"]),
        "comment": participant or admin,
    }


def _decided(timeline: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a person approved, rejected or returned since the last (re)submit."""
    decided = False
    for event in timeline:
        if event["action"] in ("submit", "resubmit"):
            decided = False
        elif event["action"] in DECISIONS and not event["automatic"]:
            decided = True
    return decided


def _timeline_entry(
    event: Mapping[str, Any], facts: FlowFacts, people: People, lang: str
) -> dict[str, Any]:
    t = texts_for(lang)
    action = str(event["action"])
    details = event.get("details") or {}
    extra = ""
    if action == "return":
        extra = facts.node_label(details.get("to"), lang)
    elif action in ("transfer", "reassign", "escalate"):
        extra = people.name(details.get("to")) if isinstance(details.get("to"), int) else ""
    elif action in ("add_approver", "cc", "remind"):
        named = details.get("users") or []
        extra = ", ".join(people.name(u) for u in named if isinstance(u, int))
        if action == "add_approver" and details.get("position"):
            position = t.get(f"ap_position_{details['position']}", details["position"])
            extra = f"{position}: {extra}"
    return {
        "at": _when(event["at"]),
        "who": t["ap_automatic"] if event["automatic"] else people.name(event["actor_id"]),
        "action": t.get(f"ap_event_{action}", action),
        "kind": action,
        "step": facts.node_label(event["node_id"], lang) if event["node_id"] else "",
        "extra": extra,
        "comment": event["comment"] or "",
        "reason": event["reason"] or "",
    }


def _record_rows(
    entity: CompiledEntity, snapshot: Mapping[str, Any] | None, lang: str
) -> list[dict[str, Any]]:
    """The record as the service lets the viewer see it at the step (hidden fields left out)."""
    if snapshot is None:
        return []
    values, modes = snapshot["values"], snapshot["fields"]
    return [
        {
            "label": field.label(lang),
            "value": views.display_value(entity, name, values, lang),
            "editable": modes[name] == "editable",
        }
        for name, field in entity.fields.items()
        if name in modes and name in values and field.field_type.name != "child_table"
    ]


def _submit_form(
    request: Request, session: WebSession, env: str, entity: str, record_id: int
) -> dict[str, Any] | None:
    """The flows the viewer could start here (start by ``manual``, entry condition met), and
    the steps each needs the submitter to choose people for; None when none applies."""
    lang, principal = session.lang, session.principal
    workspace = pages.workspace(request)
    now = datetime.now(UTC)
    options: list[dict[str, Any]] = []
    with approval_transaction(workspace, env, principal, lang, readonly=True) as conn:
        access = load_access(conn, cache_key=workspace.cache_key, env=env, principal=principal)
        reader = WriteContext(
            conn,
            cache_key=workspace.cache_key,
            env=env,
            actor_id=principal.user_id,
            lang=lang,
            access=access,
        )
        runtime = reader.entity(entity)
        found = reader.row(runtime, record_id)
        if found is None:
            return None
        row = cast(Mapping[str, Any], found)
        for candidate in published_flows(
            conn, cache_key=workspace.cache_key, env=env, entity=runtime
        ):
            try:
                chosen = choose_flow(
                    conn,
                    workspace,
                    env,
                    runtime_entity=runtime,
                    record=row,
                    name=candidate.name,
                    via="manual",
                    lang=lang,
                    now=now,
                )
            except ApprovalInvalid:
                continue
            flow = chosen.compiled
            facts = FlowFacts(flow, runtime.compiled)
            options.append(
                {
                    "name": chosen.name,
                    "label": _label_of(chosen.document.label, lang),
                    "choices": [
                        facts.choice(node, SubmitterChoiceSource, lang)
                        for node in required_choices(flow, row, {}, now)
                    ],
                }
            )
    if not options:
        return None
    return {"url": f"/app/{env}/-/submit/{entity}/{record_id}", "flows": options}


# -- reading the organisation and the metadata -------------------------------------------------


def _flow_facts(request: Request, env: str, instance: Mapping[str, Any]) -> FlowFacts:
    workspace = pages.workspace(request)
    with workspace.begin(env, readonly=True) as conn:
        runtime = load_entity(conn, namespace=workspace.cache_key, env=env, name=instance["entity"])
        pinned = pinned_flow(
            conn,
            cache_key=workspace.cache_key,
            env=env,
            name=instance["flow"],
            version=instance["flow_version"],
            entity=runtime,
        )
    return FlowFacts(pinned.compiled, runtime.compiled)


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
    return {name: _label_of(body.get("label"), lang) or name for name, body in bodies.items()}


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
        "status": _status_label(instance["status"], lang),
        "task": "" if box == "submitted" else t.get(f"ap_task_{item['status']}", item["status"]),
        "submitter": people.name(instance["submitter_id"]),
        "at": _when(instance["created_at"] if box == "submitted" else item["created_at"]),
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


def _status_label(status: str, lang: str) -> str:
    return texts_for(lang).get(f"ap_status_{status}", status)


def _when(value: str | None) -> str:
    return (value or "")[:16].replace("T", " ")


def _label_of(label: Any, lang: str) -> str:
    if isinstance(label, Mapping):
        return str(label.get(lang) or label.get("en") or "")
    if label is not None and hasattr(label, "zh"):
        return str(label.zh if lang == "zh" else label.en)
    return ""

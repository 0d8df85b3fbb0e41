"""The parts of an approval as the staff web app shows them: the panel and its forms.

The record page's approval panel and the approval page share one panel: the
instance's status and current steps, its timeline, the viewer's pending tasks with
the actions each kind takes, the instance actions the viewer may use (withdraw,
remind, comment) and the "submit" form with the flows that apply. The functions
here build that panel from what the approval services return; which actions are
offered follows the services' rules for display only (the services decide on a
post). :mod:`~formloom.platform.web.approvals` holds the routes that show it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from fastapi import Request

from formloom.engine.flows import CompiledFlow, return_targets
from formloom.engine.flows.approvers import PreviousApproverChoiceSource, SubmitterChoiceSource
from formloom.engine.flows.model import ApproverNode, CcNode, HandlerNode
from formloom.engine.records.compiled import CompiledEntity
from formloom.platform.access import load_access
from formloom.platform.entity_runtime import load_entity
from formloom.platform.flow_choices import required_choices
from formloom.platform.flow_definitions import pinned_flow, published_flows
from formloom.platform.flow_errors import ApprovalInvalid
from formloom.platform.flow_runtime import approval_transaction
from formloom.platform.flow_submit import choose_flow
from formloom.platform.record_context import WriteContext
from formloom.platform.web import pages, views
from formloom.platform.web.session import WebSession
from formloom.platform.web.texts import texts_for

#: Actions on the instance as a whole (not on one task), offered by :func:`instance_panel`.
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


# -- what a panel shows ------------------------------------------------------------------------


def empty_panel(
    session: WebSession, env: str, entity: str, record_id: int, here: str, people: People
) -> dict[str, Any]:
    """A panel with no instance and no forms yet; ``here`` is where a post returns to."""
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


def instance_panel(
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
            "status_label": status_label(instance["status"], lang),
            "flow_label": instance["flow_label"],
            "submitter": people.name(instance["submitter_id"]),
            "created_at": display_time(instance["created_at"]),
            "finished_at": display_time(instance["finished_at"])
            if instance["finished_at"]
            else None,
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
        "at": display_time(event["at"]),
        "who": t["ap_automatic"] if event["automatic"] else people.name(event["actor_id"]),
        "action": t.get(f"ap_event_{action}", action),
        "kind": action,
        "step": facts.node_label(event["node_id"], lang) if event["node_id"] else "",
        "extra": extra,
        "comment": event["comment"] or "",
        "reason": event["reason"] or "",
    }


def record_rows(
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


def submit_form(
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
                    "label": label_of(chosen.document.label, lang),
                    "choices": [
                        facts.choice(node, SubmitterChoiceSource, lang)
                        for node in required_choices(flow, row, {}, now)
                    ],
                }
            )
    if not options:
        return None
    return {"url": f"/app/{env}/-/submit/{entity}/{record_id}", "flows": options}


# -- reading the metadata ----------------------------------------------------------------------


def _flow_facts(request: Request, env: str, instance: Mapping[str, Any]) -> FlowFacts:
    """The facts of the flow version the instance is pinned to, and its entity."""
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


# -- wording -----------------------------------------------------------------------------------


def status_label(status: str, lang: str) -> str:
    """An instance's status in the viewer's language (the status itself when untranslated)."""
    return texts_for(lang).get(f"ap_status_{status}", status)


def display_time(value: str | None) -> str:
    """An ISO time as the pages show it: date, hours and minutes ('' for none)."""
    return (value or "")[:16].replace("T", " ")


def label_of(label: Any, lang: str) -> str:
    """A metadata label (a ``{"en", "zh"}`` mapping or a bilingual object) in ``lang``."""
    if isinstance(label, Mapping):
        return str(label.get(lang) or label.get("en") or "")
    if label is not None and hasattr(label, "zh"):
        return str(label.zh if lang == "zh" else label.en)
    return ""

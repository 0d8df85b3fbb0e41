"""A small company for the approval tests: contracts, roles, an org chart, flow builders.

People (login → role in production): ``rep`` (sales, submits contracts; manager
``mgr``), ``mgr`` (sales manager; manager ``vp``), ``vp``, ``director`` (sales
director), ``ceo``, ``legal1``/``legal2`` (legal), ``fin1``..``fin3`` (finance),
``boss`` (workspace administrator), ``outsider`` (no role). Teams: ``sales``
(leader ``mgr``) ⊃ ``east`` (no leader; ``rep`` is a member).

:class:`World` calls the services directly as those people (HTTP tests use
``client`` and ``headers``); flows are published through the metadata store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from formloom.platform import records
from formloom.platform.app import build_app
from formloom.platform.database import Workspace
from formloom.platform.flow_inbox import inbox, instance_detail
from formloom.platform.flow_instances import InstanceAction, act_on_instance
from formloom.platform.flow_submit import submit
from formloom.platform.flow_tasks import TaskAction, act_on_task
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument
from formloom.platform.principal import Principal
from formloom.platform.settings import Settings
from tests.identity import bearer_headers, create_team, create_user

ENV = "production"


def label(zh: str, en: str) -> dict[str, str]:
    return {"zh": zh, "en": en}


def field_(name: str, type_: str = "text", **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": label(name, name), "type": type_, **extra}


CONTRACT = {
    "name": "contract",
    "label": label("合同", "Contract"),
    "title_field": "title",
    "fields": [
        field_("title", required=True),
        field_("amount", "integer"),
        field_(
            "status",
            "single_select",
            options={
                "choices": [
                    {"value": v, "label": label(v, v)} for v in ("draft", "approved", "rejected")
                ]
            },
        ),
        field_("account_manager", "user"),
        field_("legal_notes", "long_text"),
    ],
}


def role(name: str, contract: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "label": label(name, name), "entities": {"contract": contract}}


READER = {"read": "all"}
ROLES = [
    role("sales", {"create": True, "read": "own", "update": "own", "delete": "own"}),
    role("sales_director", READER),
    role("ceo", READER),
    role("legal", {"read": "all", "update": "all"}),
    role("finance", READER),
]
PEOPLE = {
    "rep": ["sales"],
    "mgr": ["sales"],
    "vp": [],
    "director": ["sales_director"],
    "ceo": ["ceo"],
    "legal1": ["legal"],
    "legal2": ["legal"],
    "fin1": ["finance"],
    "fin2": ["finance"],
    "fin3": ["finance"],
    "outsider": [],
}


def node(id_: str, type_: str, **extra: Any) -> dict[str, Any]:
    return {"id": id_, "type": type_, "label": label(id_, id_), **extra}


def approver(id_: str, *sources: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return node(id_, "approver", assignees=list(sources), **extra)


def users(*ids: int) -> dict[str, Any]:
    return {"type": "users", "users": list(ids)}


def by_role(name: str) -> dict[str, Any]:
    return {"type": "role", "role": name}


def flow(name: str, nodes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A flow on contracts whose nodes are ``nodes`` (the first links from ``start``)."""
    return {
        "name": name,
        "label": label(name, name),
        "entity": "contract",
        "nodes": [node("start", "start", next=nodes[0]["id"]), *nodes],
        **extra,
    }


def chain(name: str, *steps: dict[str, Any], end: str = "approved", **extra: Any) -> Any:
    """A flow running ``steps`` one after the other, then ending with ``end``."""
    linked = []
    for k, step in enumerate(steps):
        following = steps[k + 1]["id"] if k + 1 < len(steps) else "end"
        linked.append({**step, "next": following})
    return flow(name, [*linked, node("end", "end", outcome=end)], **extra)


@dataclass
class World:
    workspace: Workspace
    client: TestClient
    ids: dict[str, int]
    store: MetaStore
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def principal(self, login: str) -> Principal:
        return Principal(user_id=self.ids[login], login=login, admin=login == "boss")

    def publish(self, body: dict[str, Any]) -> int:
        [result] = self.store.apply(
            ENV, [SourceDocument("flow", body, body["name"])], PublishOptions()
        )
        return result.version

    def contract(self, owner: str = "rep", **values: Any) -> int:
        body = {"title": "合同 A", "amount": 50_000, "status": "draft", **values}
        made = records.create_record(
            self.workspace,
            env=ENV,
            entity="contract",
            payload=body,
            principal=self.principal(owner),
        )
        return int(made["id"])

    def record(self, record_id: int) -> dict[str, Any]:
        return records.get_record(
            self.workspace,
            env=ENV,
            entity="contract",
            record_id=record_id,
            principal=self.principal("boss"),
        )

    def submit(self, record_id: int, as_: str = "rep", **kw: Any) -> dict[str, Any]:
        return submit(
            self.workspace,
            env=ENV,
            entity="contract",
            record_id=record_id,
            principal=self.principal(as_),
            **kw,
        )

    def act(
        self, task_id: int, action: str, as_: str, now: datetime | None = None, **kw: Any
    ) -> dict[str, Any]:
        return act_on_task(
            self.workspace,
            env=ENV,
            task_id=task_id,
            action=action,
            request=TaskAction(**kw),
            principal=self.principal(as_),
            now=now,
        )

    def act_instance(self, instance_id: int, action: str, as_: str, **kw: Any) -> dict[str, Any]:
        return act_on_instance(
            self.workspace,
            env=ENV,
            instance_id=instance_id,
            action=action,
            request=InstanceAction(**kw),
            principal=self.principal(as_),
        )

    def instance(self, instance_id: int) -> dict[str, Any]:
        return instance_detail(
            self.workspace, env=ENV, instance_id=instance_id, principal=self.principal("boss")
        )

    def pending(self, login: str, instance_id: int | None = None) -> list[dict[str, Any]]:
        items = inbox(
            self.workspace, env=ENV, principal=self.principal(login), box="pending", limit=200
        )["items"]
        return [i for i in items if instance_id is None or i["instance_id"] == instance_id]

    def task(self, login: str, instance_id: int) -> int:
        """The id of ``login``'s one pending task in the instance."""
        [found] = self.pending(login, instance_id)
        return int(found["id"])

    def actions(self, instance_id: int) -> list[str]:
        return [e["action"] for e in self.instance(instance_id)["timeline"]]


def make_world(settings: Settings) -> Iterator[World]:
    app = build_app(settings, run_worker=False)
    workspace: Workspace = app.state.workspace
    store = MetaStore(workspace)
    documents = [SourceDocument("entity", CONTRACT, "contract")]
    documents += [SourceDocument("role", body, body["name"]) for body in ROLES]
    store.apply(ENV, documents, PublishOptions())
    ids: dict[str, int] = {}
    ids["vp"] = create_user(workspace, "vp")
    ids["mgr"] = create_user(workspace, "mgr", manager_id=ids["vp"], roles={ENV: ["sales"]})
    sales = create_team(workspace, "sales", leader_id=ids["mgr"])
    create_team(workspace, "east", parent_id=sales)
    ids["rep"] = create_user(
        workspace, "rep", manager_id=ids["mgr"], teams=["east"], roles={ENV: ["sales"]}
    )
    for login, roles in PEOPLE.items():
        if login not in ids:
            ids[login] = create_user(workspace, login, roles={ENV: roles})
    ids["boss"] = create_user(workspace, "boss", admin=True)
    with TestClient(app) as client:
        world = World(workspace, client, ids, store)
        world.headers = {login: bearer_headers(workspace, i) for login, i in ids.items()}
        yield world


#: Contract lines: a child table of contracts (``contract.lines``).
CONTRACT_LINE = {
    "name": "contract_line",
    "label": label("合同明细", "Contract line"),
    "title_field": "item",
    "fields": [
        field_(
            "contract",
            "lookup",
            required=True,
            options={"entity": "contract", "on_delete": "cascade"},
        ),
        field_("item", required=True),
        field_("quantity", "integer"),
    ],
}


def with_lines(world: World, roles: dict[str, dict[str, Any]] | None = None) -> None:
    """Give contracts a child table ``lines`` of ``contract_line`` records; ``roles``
    (name → contract grant) replace the grants of those roles; every role gets the
    same grant on lines as on contracts (``fields`` aside)."""
    contract = {
        **CONTRACT,
        "fields": [
            *CONTRACT["fields"],
            field_(
                "lines", "child_table", options={"entity": "contract_line", "field": "contract"}
            ),
        ],
    }
    documents = [
        SourceDocument("entity", CONTRACT_LINE, "contract_line"),
        SourceDocument("entity", contract, "contract"),
    ]
    for body in ROLES:
        grant = (roles or {}).get(body["name"], body["entities"]["contract"])
        lines = {k: v for k, v in grant.items() if k != "fields"}
        entities = {"contract": grant, "contract_line": lines}
        documents.append(SourceDocument("role", {**body, "entities": entities}, body["name"]))
    world.store.apply(ENV, documents, PublishOptions())

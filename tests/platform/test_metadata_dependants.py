"""Roles and flows name entities and fields: a change that would break them is refused."""

from __future__ import annotations

from typing import Any

import pytest

from formloom.platform.database import Workspace
from formloom.platform.errors import Invalid
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument

ENV = "production"
LABEL = {"en": "Step", "zh": "步骤"}


def field(name: str, type_: str = "text") -> dict[str, Any]:
    return {"name": name, "label": LABEL, "type": type_}


def deal(*names: str) -> dict[str, Any]:
    return {"name": "deal", "label": LABEL, "fields": [field(n, "integer") for n in names]}


ROLE = {
    "name": "rep",
    "label": LABEL,
    "entities": {"deal": {"read": "own", "fields": {"margin": "hidden"}}},
}


def node(id_: str, type_: str, **extra: Any) -> dict[str, Any]:
    return {"id": id_, "type": type_, "label": LABEL, **extra}


FLOW = {
    "name": "deal_approval",
    "label": LABEL,
    "entity": "deal",
    "nodes": [
        node("start", "start", next="big"),
        node(
            "big",
            "condition",
            branches=[
                {"condition": {"field": "amount", "op": "ge", "value": 100}, "to": "yes"},
                {"default": True, "to": "no"},
            ],
        ),
        node("yes", "end", outcome="approved"),
        node("no", "end", outcome="rejected"),
    ],
}


def apply(ws: Workspace, *docs: tuple[str, dict[str, Any]], purge: bool = False) -> None:
    sources = [SourceDocument(kind, body, f"{kind}/{body['name']}") for kind, body in docs]
    MetaStore(ws).apply(ENV, sources, PublishOptions(purge=purge))


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    apply(workspace, ("entity", deal("amount", "margin")), ("role", ROLE), ("flow", FLOW))
    return workspace


def test_removing_a_field_a_role_names_is_refused_until_the_role_changes(ws: Workspace) -> None:
    with pytest.raises(Invalid) as caught:
        apply(ws, ("entity", deal("amount")))
    assert "field `deal.margin` is named by role `rep`" in str(caught.value.issues)
    role = {**ROLE, "entities": {"deal": {"read": "own"}}}
    apply(ws, ("entity", deal("amount")), ("role", role))  # one batch: fine
    assert MetaStore(ws).published(ENV, "entity")["entity"]["deal"]["fields"][0]["name"] == (
        "amount"
    )


def test_removing_a_field_a_flow_uses_is_refused(ws: Workspace) -> None:
    with pytest.raises(Invalid) as caught:
        apply(ws, ("entity", deal("margin")))
    message = str(caught.value.issues)
    assert "approval flow `deal_approval` would no longer be valid" in message
    assert "amount" in message


def test_removing_an_entity_that_roles_and_flows_name_is_refused(ws: Workspace) -> None:
    with pytest.raises(Invalid) as caught:
        MetaStore(ws).remove(ENV, "entity", "deal", PublishOptions())
    messages = " ".join(i.message for i in caught.value.issues)
    assert "named by role `rep`" in messages and "approval flows (`deal_approval`)" in messages

"""Publishing flows: the users a flow names must be active users of the workspace."""

from __future__ import annotations

from typing import Any

import pytest

from formloom.platform.database import Workspace
from formloom.platform.errors import Invalid
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument
from tests.identity import create_user

ENV = "production"
LABEL = {"en": "Step", "zh": "步骤"}
TITLE = {"name": "title", "label": LABEL, "type": "text"}
NOTE = {"name": "note", "label": LABEL, "fields": [TITLE]}


def flow(approver: int) -> dict[str, Any]:
    def node(id_: str, type_: str, **extra: Any) -> dict[str, Any]:
        return {"id": id_, "type": type_, "label": LABEL, **extra}

    return {
        "name": "note_approval",
        "label": LABEL,
        "entity": "note",
        "nodes": [
            node("start", "start", next="boss"),
            node(
                "boss",
                "approver",
                assignees=[{"type": "users", "users": [approver]}],
                next="done",
            ),
            node("done", "end", outcome="approved"),
        ],
    }


def test_a_flow_may_only_name_active_users(workspace: Workspace) -> None:
    store = MetaStore(workspace)
    store.apply(ENV, [SourceDocument("entity", NOTE, "note")], PublishOptions())
    boss = create_user(workspace, "boss")

    with pytest.raises(Invalid) as caught:
        store.apply(ENV, [SourceDocument("flow", flow(boss + 100), "flow")], PublishOptions())
    assert [i.code for i in caught.value.issues] == ["unknown_user"]
    assert store.validate(ENV, "flow", flow(boss + 100))[0].code == "unknown_user"

    published = store.apply(ENV, [SourceDocument("flow", flow(boss), "flow")], PublishOptions())
    assert [(r.kind, r.version) for r in published] == [("flow", 1)]
    assert store.validate(ENV, "flow", flow(boss)) == []

"""The approvals HTTP API with several users: submit, act, inbox, instance, notifications
(both databases)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from formloom.platform.settings import Settings
from tests.platform.flow_world import ENV, World, approver, by_role, chain, make_world, users

BASE = f"/api/envs/{ENV}"


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    yield from make_world(settings)


def post(world: World, path: str, login: str, body: Any = None, **headers: str) -> Any:
    return world.client.post(
        f"{BASE}{path}", json=body, headers={**world.headers[login], **headers}
    )


def get(world: World, path: str, login: str, **params: Any) -> Any:
    return world.client.get(f"{BASE}{path}", params=params, headers=world.headers[login])


def test_submit_approve_and_the_inboxes_over_http(world: World) -> None:
    world.publish(
        chain(
            "http",
            approver("ceo", by_role("ceo")),
            approver("copy_step", users(world.ids["fin1"]), mode="or_sign"),
        )
    )
    record_id = world.contract()
    submitted = post(
        world, f"/records/contract/{record_id}/approvals", "rep", {"comment": "请审批"}
    )
    assert submitted.status_code == 201, submitted.text
    instance = submitted.json()
    assert instance["timeline"][0]["comment"] == "请审批"
    [task] = get(world, "/approvals/inbox", "ceo").json()["items"]
    assert task["instance"]["id"] == instance["id"] and task["node_label"] == "ceo"
    # someone else may not act; the assignee may, once
    refused = post(
        world,
        f"/approvals/tasks/{task['id']}/approve",
        "director",
        {"comment": "x"},
        **{"Accept-Language": "zh-CN"},
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_assignee"
    assert "只有处理人可以操作" in refused.json()["detail"]
    approved = post(world, f"/approvals/tasks/{task['id']}/approve", "ceo", {"comment": "同意"})
    assert approved.status_code == 200, approved.text
    again = post(world, f"/approvals/tasks/{task['id']}/approve", "ceo")
    assert again.status_code == 409
    assert again.json()["code"] == "task_already_decided"
    unknown = post(world, f"/approvals/tasks/{task['id']}/shrug", "ceo")
    assert unknown.status_code == 422
    # the boxes
    assert get(world, "/approvals/inbox", "ceo").json()["items"] == []
    [done] = get(world, "/approvals/inbox", "ceo", box="done").json()["items"]
    assert (done["id"], done["status"], done["comment"]) == (task["id"], "approved", "同意")
    [mine] = get(world, "/approvals/inbox", "rep", box="submitted").json()["items"]
    assert (mine["id"], mine["status"]) == (instance["id"], "running")
    assert len(get(world, "/approvals/inbox", "fin1").json()["items"]) == 1


def test_the_inbox_pages_and_instances_are_private(world: World) -> None:
    world.publish(chain("paged", approver("ceo", by_role("ceo"))))
    ids = [world.submit(world.contract())["id"] for _ in range(5)]
    first = get(world, "/approvals/inbox", "ceo", limit=2).json()
    second = get(world, "/approvals/inbox", "ceo", limit=2, after=first["next"]).json()
    third = get(world, "/approvals/inbox", "ceo", limit=2, after=second["next"]).json()
    seen = [i["instance_id"] for page in (first, second, third) for i in page["items"]]
    assert seen == ids[::-1] and third["next"] is None
    assert get(world, f"/approvals/instances/{ids[0]}", "ceo").status_code == 200
    assert get(world, f"/approvals/instances/{ids[0]}", "boss").status_code == 200
    outsider = get(world, f"/approvals/instances/{ids[0]}", "outsider")
    assert outsider.status_code == 403 and outsider.json()["code"] == "approval_forbidden"
    missing = get(world, "/approvals/instances/999999", "ceo")
    assert missing.status_code == 404 and missing.json()["code"] == "approval_not_found"
    bad_box = get(world, "/approvals/inbox", "ceo", box="later")
    assert bad_box.status_code == 422


def test_withdraw_terminate_migrate_and_notifications_over_http(world: World) -> None:
    world.publish(chain("ops", approver("ceo", by_role("ceo"))))
    first = world.submit(world.contract())
    second = world.submit(world.contract())
    withdrawn = post(world, f"/approvals/instances/{first['id']}/withdraw", "rep", {})
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    finished = post(world, f"/approvals/instances/{first['id']}/remind", "rep")
    assert finished.status_code == 409 and finished.json()["code"] == "instance_finished"
    same = post(world, f"/approvals/instances/{second['id']}/migrate", "boss", {"mapping": {}})
    assert same.status_code == 422  # only one version
    ended = post(world, f"/approvals/instances/{second['id']}/terminate", "boss", {"comment": "x"})
    assert ended.json()["status"] == "terminated"
    notes = get(world, "/notifications", "rep").json()["items"]
    assert [n["kind"] for n in notes] == ["outcome"]
    ceo_notes = get(world, "/notifications", "ceo", unread=True).json()["items"]
    assert [n["kind"] for n in ceo_notes] == ["task", "task"]
    read = world.client.post(
        f"{BASE}/notifications/read",
        json={"ids": [n["id"] for n in ceo_notes]},
        headers=world.headers["ceo"],
    )
    assert read.json() == {"changed": 2}
    assert get(world, "/notifications", "ceo", unread=True).json()["items"] == []

"""What an approver sees: the record in the instance and task views, as the step allows it
(both databases, through HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from formloom.platform.metastore import PublishOptions, SourceDocument
from formloom.platform.settings import Settings
from tests.platform.flow_world import ENV, ROLES, World, approver, chain, make_world, node, users

APPROVALS = f"/api/envs/{ENV}/approvals"

#: Legal reads and updates every contract, but never sees the account manager and may not
#: retitle contracts.
LEGAL = {
    "read": "all",
    "update": "all",
    "fields": {"account_manager": "hidden", "title": "read_only"},
}


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    yield from make_world(settings)


def get(world: World, path: str, login: str) -> Any:
    return world.client.get(f"{APPROVALS}{path}", headers=world.headers[login])


def started(world: World, **extra: Any) -> tuple[int, int]:
    """A contract in review by ``legal1`` and ``outsider`` (countersign), copied to ``vp``,
    then signed by ``ceo``."""
    legal = next(r for r in ROLES if r["name"] == "legal")
    world.store.apply(
        ENV,
        [SourceDocument("role", {**legal, "entities": {"contract": LEGAL}}, "legal")],
        PublishOptions(),
    )
    world.publish(
        chain(
            "review",
            node("copy", "cc", recipients=[users(world.ids["vp"])]),
            approver(
                "review",
                users(world.ids["legal1"], world.ids["outsider"]),
                mode="countersign",
                field_permissions={
                    "amount": "hidden",
                    "legal_notes": "editable",
                    "title": "editable",
                    "status": "read_only",
                },
            ),
            approver("sign", users(world.ids["ceo"]), field_permissions={"amount": "read_only"}),
            **extra,
        )
    )
    record_id = world.contract(account_manager=world.ids["mgr"], legal_notes="none yet")
    return record_id, int(world.submit(record_id)["id"])


def test_an_assignee_sees_the_record_as_the_step_and_their_roles_allow(world: World) -> None:
    record_id, instance_id = started(world)
    seen = get(world, f"/instances/{instance_id}", "legal1")
    assert seen.status_code == 200
    record = seen.json()["record"]
    assert record["via"] == "role" and record["node_ids"] == ["review"]
    values = record["values"]
    assert values["id"] == record_id and values["legal_notes"] == "none yet"
    assert "amount" not in values  # hidden at this step
    assert "account_manager" not in values  # hidden by the role
    assert record["fields"] == {
        "title": "read_only",  # editable at the step, read-only for the role
        "status": "read_only",
        "legal_notes": "editable",
    }
    # the task view shows the same
    task_id = world.task("legal1", instance_id)
    task = get(world, f"/tasks/{task_id}", "legal1")
    assert task.status_code == 200
    body = task.json()
    assert (body["id"], body["instance"]["id"]) == (task_id, instance_id)
    assert body["record"] == record


def test_an_assignee_without_read_access_sees_the_record_through_the_approval(
    world: World,
) -> None:
    record_id, instance_id = started(world)
    # `outsider` has no role at all: the records API does not show the contract
    direct = world.client.get(
        f"/api/envs/{ENV}/records/contract/{record_id}", headers=world.headers["outsider"]
    )
    assert direct.status_code in (403, 404)
    task_id = world.task("outsider", instance_id)
    body = get(world, f"/tasks/{task_id}", "outsider").json()
    record = body["record"]
    assert record["via"] == "approval"
    assert record["values"]["title"] == "合同 A"
    assert record["values"]["account_manager"] == world.ids["mgr"]  # no role hides it
    assert "amount" not in record["values"]
    # they cannot update the record, so nothing is editable for them
    assert set(record["fields"].values()) == {"read_only"}
    assert "amount" not in record["fields"]
    assert get(world, f"/instances/{instance_id}", "outsider").json()["record"] == record


def test_cc_recipients_and_the_submitter_see_it_others_do_not(world: World) -> None:
    _, instance_id = started(world)
    # the CC recipient (no role): the current step's view, nothing editable
    copy = get(world, f"/instances/{instance_id}", "vp")
    assert copy.status_code == 200
    record = copy.json()["record"]
    assert record["via"] == "approval" and record["node_ids"] == ["review"]
    assert "amount" not in record["values"]
    assert set(record["fields"].values()) == {"read_only"}
    # the submitter reads their own contract through their role, under the step's rule
    mine = get(world, f"/instances/{instance_id}", "rep").json()["record"]
    assert mine["via"] == "role" and "amount" not in mine["values"]
    assert mine["fields"]["legal_notes"] == "read_only"  # not their task
    # a non-participant who cannot read the record: refused as before
    refused = get(world, f"/instances/{instance_id}", "mgr")
    assert refused.status_code == 403
    assert refused.json()["code"] == "approval_forbidden"
    # finance reads every contract: sees the instance and the record through its role
    reader = get(world, f"/instances/{instance_id}", "fin1").json()["record"]
    assert reader["via"] == "role" and "amount" not in reader["values"]
    # someone else's task: only those who may see the instance
    task_id = world.task("legal1", instance_id)
    assert get(world, f"/tasks/{task_id}", "mgr").status_code == 403
    assert get(world, f"/tasks/{task_id}", "vp").json()["record"]["via"] == "approval"
    missing = get(world, "/tasks/999999", "legal1")
    assert missing.status_code == 404 and missing.json()["code"] == "approval_not_found"


def test_the_view_follows_the_step_and_a_flow_admin_without_read_access_sees_no_record(
    world: World,
) -> None:
    record_id, instance_id = started(world, admin=world.ids["mgr"])
    # the flow admin sees the instance, but not a record their roles do not let them read
    admin = get(world, f"/instances/{instance_id}", "mgr")
    assert admin.status_code == 200 and admin.json()["record"] is None
    for login in ("legal1", "outsider"):
        world.act(world.task(login, instance_id), "approve", login)
    # at `sign` the amount shows again (read-only); legal_notes is no longer editable
    ceo = get(world, f"/instances/{instance_id}", "ceo").json()["record"]
    assert ceo["node_ids"] == ["sign"] and ceo["values"]["amount"] == 50_000
    assert ceo["fields"]["amount"] == "read_only" and ceo["fields"]["legal_notes"] == "read_only"
    # outsider took part earlier: still sees it, as the current step allows
    past = get(world, f"/instances/{instance_id}", "outsider").json()["record"]
    assert past["via"] == "approval" and past["values"]["amount"] == 50_000
    world.act(world.task("ceo", instance_id), "approve", "ceo")
    # finished: a participant sees the record under the steps they took part in
    done = get(world, f"/instances/{instance_id}", "outsider").json()["record"]
    assert done["node_ids"] == ["review"] and "amount" not in done["values"]
    # the administrator sees everything the step shows
    boss = get(world, f"/instances/{instance_id}", "boss").json()["record"]
    assert boss["via"] == "role" and boss["node_ids"] == []
    assert boss["values"]["account_manager"] == world.ids["mgr"]
    assert boss["values"]["amount"] == 50_000 and boss["values"]["id"] == record_id

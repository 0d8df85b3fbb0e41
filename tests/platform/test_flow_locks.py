"""A record in approval changes only through the flow (both databases, through HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from formloom.platform import records
from formloom.platform.errors import Invalid
from formloom.platform.flow_errors import RecordLocked
from formloom.platform.settings import Settings
from tests.platform.flow_world import ENV, World, approver, by_role, chain, make_world

RECORDS = f"/api/envs/{ENV}/records/contract"


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    yield from make_world(settings)


def patch(world: World, login: str, record_id: int, **values: object) -> tuple[int, dict]:  # type: ignore[type-arg]
    version = world.record(record_id)["version"]
    answer = world.client.patch(
        f"{RECORDS}/{record_id}", json={**values, "version": version}, headers=world.headers[login]
    )
    return answer.status_code, answer.json()


def test_a_record_in_approval_is_locked_except_the_fields_the_step_makes_editable(
    world: World,
) -> None:
    world.publish(
        chain(
            "locked",
            approver(
                "legal",
                by_role("legal"),
                mode="or_sign",
                field_permissions={"legal_notes": "editable", "amount": "read_only"},
            ),
        )
    )
    record_id = world.contract()
    started = world.submit(record_id)
    # the owner may not change it while it is in approval
    status, problem = patch(world, "rep", record_id, amount=1)
    assert status == 423
    assert problem["code"] == "record_in_approval"
    assert f"instance {started['id']}" in problem["detail"]
    assert "/withdraw" in problem["detail"]
    zh = world.client.patch(
        f"{RECORDS}/{record_id}",
        json={"amount": 1, "version": world.record(record_id)["version"]},
        headers={**world.headers["rep"], "Accept-Language": "zh"},
    ).json()
    assert "正在审批中" in zh["detail"]
    # the approver may change the editable field, not the others
    status, _ = patch(world, "legal1", record_id, legal_notes="clause 7 checked")
    assert status == 200
    status, problem = patch(world, "legal1", record_id, amount=2)
    assert status == 423 and "`amount`" in problem["detail"]
    # nobody deletes it, not even an administrator
    deleted = world.client.delete(f"{RECORDS}/{record_id}", headers=world.headers["boss"])
    assert deleted.status_code == 423
    with pytest.raises(Invalid) as transfer:
        records.transfer_owner(
            world.workspace,
            env=ENV,
            entity="contract",
            record_ids=[record_id],
            owner_id=world.ids["mgr"],
            principal=world.principal("boss"),
        )
    assert transfer.value.issues[0].code == RecordLocked.code
    # the record shows its approval status
    shown = world.client.get(f"{RECORDS}/{record_id}/approvals", headers=world.headers["rep"])
    assert shown.status_code == 200
    assert (shown.json()["status"], shown.json()["locked"]) == ("running", True)
    # once the approval ends, it is unlocked
    world.act(world.task("legal2", started["id"]), "approve", "legal2")
    status, _ = patch(world, "rep", record_id, amount=3)
    assert status == 200
    shown = world.client.get(f"{RECORDS}/{record_id}/approvals", headers=world.headers["rep"])
    assert (shown.json()["status"], shown.json()["locked"]) == ("approved", False)
    assert [i["id"] for i in shown.json()["instances"]] == [started["id"]]


def test_record_approvals_need_read_access_to_the_record(world: World) -> None:
    world.publish(chain("seen", approver("ceo", by_role("ceo"))))
    record_id = world.contract()
    world.submit(record_id)
    hidden = world.client.get(f"{RECORDS}/{record_id}/approvals", headers=world.headers["mgr"])
    assert hidden.status_code == 404  # `sales` reads its own contracts only: not leaked
    never = world.contract()
    shown = world.client.get(f"{RECORDS}/{never}/approvals", headers=world.headers["rep"])
    assert shown.json() == {
        "entity": "contract",
        "record_id": never,
        "status": None,
        "locked": False,
        "instances": [],
    }

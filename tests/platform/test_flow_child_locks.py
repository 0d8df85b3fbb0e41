"""Child tables of a record in approval are locked with it (both databases, through HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from formloom.platform.settings import Settings
from tests.platform.flow_world import ENV, World, approver, chain, make_world, users, with_lines

RECORDS = f"/api/envs/{ENV}/records"


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    w = next(gen := make_world(settings))
    with_lines(w, {"legal": {"create": True, "read": "all", "update": "all", "delete": "all"}})
    yield w
    for _ in gen:
        pass


def call(world: World, method: str, path: str, login: str, body: Any = None) -> Any:
    return world.client.request(method, f"{RECORDS}{path}", json=body, headers=world.headers[login])


def contract_with_lines(world: World) -> int:
    made = call(
        world,
        "POST",
        "/contract",
        "rep",
        {
            "title": "合同 B",
            "amount": 80_000,
            "lines": [{"item": "server", "quantity": 2}, {"item": "support", "quantity": 1}],
        },
    )
    assert made.status_code == 201, made.json()
    return int(made.json()["id"])


def lines_of(world: World, record_id: int) -> list[dict[str, Any]]:
    return list(world.record(record_id)["lines"])


def publish(world: World) -> None:
    """``check`` by legal1 (lines read-only), then ``edit`` by legal2 (lines editable)."""
    world.publish(
        chain(
            "lines",
            approver(
                "check",
                users(world.ids["legal1"]),
                returnable_to=["start"],
                field_permissions={"lines": "read_only"},
            ),
            approver(
                "edit",
                users(world.ids["legal2"]),
                field_permissions={"lines": "editable", "legal_notes": "editable"},
            ),
        )
    )


def assert_locked(answer: Any, instance_id: int) -> None:
    assert answer.status_code == 423, answer.json()
    problem = answer.json()
    assert problem["code"] == "record_in_approval"
    assert f"instance {instance_id}" in problem["detail"] and "`lines`" in problem["detail"]


def test_child_rows_are_locked_through_the_parent_and_directly(world: World) -> None:
    publish(world)
    record_id = contract_with_lines(world)
    binned = call(world, "POST", "/contract_line", "rep", {"contract": record_id, "item": "old"})
    assert call(world, "DELETE", f"/contract_line/{binned.json()['id']}", "rep").status_code < 300
    instance_id = int(world.submit(record_id)["id"])
    before = lines_of(world, record_id)
    version = world.record(record_id)["version"]
    first, second = ({"id": r["id"], "version": r["version"]} for r in before)
    # through the parent: add, change or drop a row
    for lines in (
        [first, second, {"item": "extra", "quantity": 1}],
        [{**first, "quantity": 9}, second],
        [first],
    ):
        answer = call(
            world, "PATCH", f"/contract/{record_id}", "rep", {"lines": lines, "version": version}
        )
        assert_locked(answer, instance_id)
    # sending the rows unchanged changes nothing, so it is not refused
    same = call(
        world,
        "PATCH",
        f"/contract/{record_id}",
        "rep",
        {"lines": [first, second], "version": version},
    )
    assert same.status_code == 200, same.json()
    # directly: create, update, move, delete a line of the locked contract
    assert_locked(
        call(world, "POST", "/contract_line", "rep", {"contract": record_id, "item": "x"}),
        instance_id,
    )
    line = before[0]
    assert_locked(
        call(
            world,
            "PATCH",
            f"/contract_line/{line['id']}",
            "rep",
            {"quantity": 5, "version": line["version"]},
        ),
        instance_id,
    )
    other = world.contract()
    assert_locked(
        call(
            world,
            "PATCH",
            f"/contract_line/{line['id']}",
            "rep",
            {"contract": other, "version": line["version"]},
        ),
        instance_id,
    )
    assert_locked(call(world, "DELETE", f"/contract_line/{line['id']}", "boss"), instance_id)
    # nor into a locked contract from another one
    moved = call(world, "POST", "/contract_line", "rep", {"contract": other, "item": "y"})
    assert moved.status_code == 201
    assert_locked(
        call(
            world,
            "PATCH",
            f"/contract_line/{moved.json()['id']}",
            "rep",
            {"contract": record_id, "version": moved.json()["version"]},
        ),
        instance_id,
    )
    # the approver whose step leaves the lines read-only is refused too
    assert_locked(
        call(
            world,
            "PATCH",
            f"/contract_line/{line['id']}",
            "legal1",
            {"quantity": 5, "version": line["version"]},
        ),
        instance_id,
    )
    # nor come back from the recycle bin
    assert_locked(
        call(world, "POST", f"/contract_line/{binned.json()['id']}/restore", "rep"), instance_id
    )
    assert lines_of(world, record_id) == before
    zh = world.client.post(
        f"{RECORDS}/contract_line",
        json={"contract": record_id, "item": "x"},
        headers={**world.headers["rep"], "Accept-Language": "zh"},
    ).json()
    assert "正在审批中" in zh["detail"] and "子表" in zh["detail"]


def test_the_step_that_makes_the_child_table_editable_lets_its_rows_change(world: World) -> None:
    publish(world)
    record_id = contract_with_lines(world)
    instance_id = int(world.submit(record_id)["id"])
    world.act(world.task("legal1", instance_id), "approve", "legal1")
    # legal2's step makes `lines` editable: through the parent ...
    version = world.record(record_id)["version"]
    line = lines_of(world, record_id)[0]
    saved = call(
        world,
        "PATCH",
        f"/contract/{record_id}",
        "legal2",
        {
            "lines": [
                {"id": line["id"], "version": line["version"], "quantity": 3},
                {"item": "training", "quantity": 1},
            ],
            "version": version,
        },
    )
    assert saved.status_code == 200, saved.json()
    assert [(r["item"], r["quantity"]) for r in saved.json()["lines"]] == [
        ("server", 3),
        ("training", 1),
    ]
    # ... and directly
    line = saved.json()["lines"][1]
    changed = call(
        world,
        "PATCH",
        f"/contract_line/{line['id']}",
        "legal2",
        {"quantity": 4, "version": line["version"]},
    )
    assert changed.status_code == 200, changed.json()
    made = call(world, "POST", "/contract_line", "legal2", {"contract": record_id, "item": "z"})
    assert made.status_code == 201, made.json()
    assert call(world, "DELETE", f"/contract_line/{made.json()['id']}", "legal2").status_code in (
        200,
        204,
    )
    # the submitter still may not
    assert_locked(
        call(world, "POST", "/contract_line", "rep", {"contract": record_id, "item": "x"}),
        instance_id,
    )
    # once the approval ends, the lines are free again
    world.act(world.task("legal2", instance_id), "approve", "legal2")
    free = call(world, "POST", "/contract_line", "rep", {"contract": record_id, "item": "late"})
    assert free.status_code == 201, free.json()


def test_a_returned_record_s_lines_change_with_it(world: World) -> None:
    publish(world)
    record_id = contract_with_lines(world)
    instance_id = int(world.submit(record_id)["id"])
    world.act(world.task("legal1", instance_id), "return", "legal1", comment="fix the lines")
    version = world.record(record_id)["version"]
    line = lines_of(world, record_id)[0]
    saved = call(
        world,
        "PATCH",
        f"/contract/{record_id}",
        "rep",
        {
            "lines": [{"id": line["id"], "version": line["version"], "quantity": 7}],
            "version": version,
        },
    )
    assert saved.status_code == 200, saved.json()
    assert [r["quantity"] for r in saved.json()["lines"]] == [7]

"""Migrating a running instance to another flow version with an explicit node mapping
(both databases)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from formloom.platform.errors import Invalid
from formloom.platform.flow_errors import ApprovalRefused, NotAllowed
from formloom.platform.flow_migration import migrate
from formloom.platform.settings import Settings
from tests.platform.flow_world import (
    ENV,
    World,
    approver,
    by_role,
    chain,
    flow,
    make_world,
    node,
    users,
)


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    yield from make_world(settings)


def move(world: World, instance_id: int, as_: str = "boss", **kw: object) -> dict:  # type: ignore[type-arg]
    return migrate(
        world.workspace,
        env=ENV,
        instance_id=instance_id,
        principal=world.principal(as_),
        **kw,  # type: ignore[arg-type]
    )


def test_a_running_instance_moves_to_the_new_version_with_its_tasks(world: World) -> None:
    v1 = chain("moving", approver("director", by_role("sales_director")))
    world.publish(v1)
    started = world.submit(world.contract())
    task = world.task("director", started["id"])
    world.publish(
        chain(
            "moving",
            approver("sales_director", by_role("sales_director")),
            approver("legal", by_role("legal"), mode="or_sign"),
        )
    )
    with pytest.raises(NotAllowed):
        move(world, started["id"], as_="rep", mapping={"director": "sales_director"})
    with pytest.raises(Invalid) as unmapped:
        move(world, started["id"], mapping={})
    assert unmapped.value.issues[0].code == "unmapped_step"
    moved = move(world, started["id"], mapping={"director": "sales_director"})
    assert moved["flow_version"] == 2
    assert [s["node_id"] for s in moved["current"]] == ["sales_director"]
    assert world.task("director", started["id"]) == task  # the same task, not re-assigned
    assert moved["timeline"][-1]["details"] == {
        "from": 1,
        "to": 2,
        "mapping": {"director": "sales_director"},
    }
    after = world.act(task, "approve", "director")
    assert [s["node_id"] for s in after["current"]] == ["legal"]  # version 2 goes on to legal


def test_migration_is_refused_while_a_countersign_or_a_join_is_half_done(world: World) -> None:
    legal1, fin1 = world.ids["legal1"], world.ids["fin1"]
    world.publish(chain("counting", approver("finance", by_role("finance"), mode="countersign")))
    world.publish(
        flow(
            "joining",
            [
                node("split", "parallel_split", branches=["legal", "finance"]),
                approver("legal", users(legal1), next="join"),
                approver("finance", users(fin1), next="join"),
                node("join", "parallel_join", next="end"),
                node("end", "end", outcome="approved"),
            ],
        )
    )
    counting = world.submit(world.contract(), flow="counting")
    world.act(world.task("fin1", counting["id"]), "approve", "fin1")
    joining = world.submit(world.contract(), flow="joining")
    world.act(world.task("legal1", joining["id"]), "approve", "legal1")
    world.publish(chain("counting", approver("finance", by_role("finance"), mode="or_sign")))
    world.publish(
        flow(
            "joining",
            [
                node("split", "parallel_split", branches=["legal", "finance"]),
                approver("legal", users(legal1), next="join"),
                approver("finance", users(fin1), mode="or_sign", next="join"),
                node("join", "parallel_join", next="end"),
                node("end", "end", outcome="approved"),
            ],
        )
    )
    with pytest.raises(ApprovalRefused) as half_counted:
        move(world, counting["id"], mapping={})
    assert half_counted.value.code == "step_half_done"
    with pytest.raises(ApprovalRefused) as half_joined:
        move(world, joining["id"], mapping={})
    assert half_joined.value.code == "join_half_done"

"""People's actions on tasks and instances: approve, reject, return and resubmit, transfer,
add approvers, withdraw, remind, comment, and the admins' reassign and terminate (both
databases)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from formloom.platform.errors import Invalid
from formloom.platform.flow_errors import (
    ApprovalRefused,
    InstanceFinished,
    NotAllowed,
    NotAssignee,
    TaskAlreadyDecided,
)
from formloom.platform.settings import Settings
from formloom.platform.tables import notification
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


def test_a_countersign_of_three_is_rejected_by_one_rejection(world: World) -> None:
    world.publish(
        chain(
            "three",
            approver(
                "finance", by_role("finance"), mode="countersign", comment_required_on_reject=True
            ),
        )
    )
    started = world.submit(world.contract())
    assert len(started["current"][0]["tasks"]) == 3
    world.act(world.task("fin1", started["id"]), "approve", "fin1")
    task = world.task("fin2", started["id"])
    with pytest.raises(Invalid) as bare:
        world.act(task, "reject", "fin2")
    assert bare.value.issues[0].code == "comment_required"
    done = world.act(task, "reject", "fin2", comment="price too low")
    assert done["status"] == "rejected"
    statuses = {t["assignee_id"]: t["status"] for t in done["tasks"]}
    assert statuses == {
        world.ids["fin1"]: "approved",
        world.ids["fin2"]: "rejected",
        world.ids["fin3"]: "cancelled",
    }
    assert [e["action"] for e in done["timeline"]] == ["submit", "approve", "reject", "rejected"]
    assert done["timeline"][2]["comment"] == "price too low"
    with pytest.raises(InstanceFinished):
        world.act(task, "approve", "fin2")


def test_only_the_assignee_acts_and_a_decided_task_is_a_conflict(world: World) -> None:
    world.publish(
        chain("one", approver("ceo", by_role("ceo")), approver("fin", by_role("finance")))
    )
    started = world.submit(world.contract())
    task = world.task("ceo", started["id"])
    with pytest.raises(NotAssignee) as stranger:
        world.act(task, "approve", "director")
    assert f"assigned to user {world.ids['ceo']}" in stranger.value.message
    world.act(task, "approve", "ceo")
    with pytest.raises(TaskAlreadyDecided) as again:
        world.act(task, "approve", "ceo")
    assert "already approved" in again.value.message
    stale = world.task("fin1", started["id"])
    with pytest.raises(TaskAlreadyDecided):
        world.act(stale, "approve", "fin1", rev=99)


def test_return_to_the_submitter_who_edits_and_resubmits_the_same_instance(
    world: World,
) -> None:
    world.publish(
        chain(
            "returns",
            approver("director", by_role("sales_director"), returnable_to=["start"]),
            approver("ceo", by_role("ceo"), returnable_to="earlier"),
        )
    )
    record_id = world.contract()
    started = world.submit(record_id)
    world.act(world.task("director", started["id"]), "approve", "director")
    with pytest.raises(Invalid) as nowhere:
        world.act(world.task("ceo", started["id"]), "return", "ceo", to="legal")
    assert "`start`, `director`" in nowhere.value.message
    returned = world.act(
        world.task("ceo", started["id"]), "return", "ceo", comment="fix the amount"
    )
    assert returned["status"] == "running"
    [resubmit] = world.pending("rep", started["id"])
    assert resubmit["kind"] == "resubmit"
    # the submitter edits the record (unlocked for them now) and resubmits
    edited = world.client.patch(
        f"/api/envs/{ENV}/records/contract/{record_id}",
        json={"amount": 40_000, "version": world.record(record_id)["version"]},
        headers=world.headers["rep"],
    )
    assert edited.status_code == 200, edited.text
    again = world.act(resubmit["id"], "resubmit", "rep", comment="amount fixed")
    assert again["id"] == started["id"] and again["round"] == 2
    assert [s["node_id"] for s in again["current"]] == ["director"]
    world.act(world.task("director", started["id"]), "approve", "director")
    back = world.act(world.task("ceo", started["id"]), "return", "ceo", to="director")
    assert [s["node_id"] for s in back["current"]] == ["director"]
    world.act(world.task("director", started["id"]), "approve", "director")
    done = world.act(world.task("ceo", started["id"]), "approve", "ceo")
    assert done["status"] == "approved"
    actions = [e["action"] for e in done["timeline"]]
    assert actions == [
        "submit",
        "approve",
        "return",
        "resubmit",
        "approve",
        "return",
        "approve",
        "approve",
        "approved",
    ]


def test_add_approver_before_after_and_alongside(world: World) -> None:
    world.publish(chain("signs", approver("director", by_role("sales_director"))))
    director, legal1, legal2, fin1 = (
        world.ids[x] for x in ("director", "legal1", "legal2", "fin1")
    )
    # before: legal1 approves first, then the director again
    first = world.submit(world.contract())
    task = world.task("director", first["id"])
    added = world.act(task, "add_approver", "director", users=[legal1], position="before")
    pending = [(t["assignee_id"], t["status"]) for t in added["current"][0]["tasks"]]
    assert pending == [(legal1, "pending"), (director, "waiting")]
    with pytest.raises(TaskAlreadyDecided):
        world.act(task, "approve", "director")  # waiting now, not pending
    world.act(world.task("legal1", first["id"]), "approve", "legal1")
    assert world.act(task, "approve", "director")["status"] == "approved"
    # after: the director approves, then legal2 must too
    second = world.submit(world.contract())
    task = world.task("director", second["id"])
    world.act(task, "add_approver", "director", users=[legal2], position="after")
    assert world.act(task, "approve", "director")["status"] == "running"
    assert world.act(world.task("legal2", second["id"]), "approve", "legal2")["status"] == (
        "approved"
    )
    # alongside: both at once, both must approve (a countersign of two)
    third = world.submit(world.contract())
    task = world.task("director", third["id"])
    world.act(task, "add_approver", "director", users=[fin1], position="alongside")
    assert world.act(world.task("fin1", third["id"]), "approve", "fin1")["status"] == "running"
    assert world.act(task, "approve", "director")["status"] == "approved"
    events = [e for e in world.instance(third["id"])["timeline"] if e["action"] == "add_approver"]
    assert events[0]["details"] == {"position": "alongside", "users": [fin1]}


def test_transfer_and_the_admins_reassign(world: World) -> None:
    world.publish(chain("moves", approver("director", by_role("sales_director"))))
    started = world.submit(world.contract())
    task = world.task("director", started["id"])
    moved = world.act(task, "transfer", "director", user=world.ids["vp"], comment="on leave")
    assert [t["assignee_id"] for t in moved["current"][0]["tasks"]] == [world.ids["vp"]]
    new_task = world.task("vp", started["id"])
    with pytest.raises(NotAllowed):
        world.act(new_task, "reassign", "rep", user=world.ids["ceo"])
    world.act(new_task, "reassign", "boss", user=world.ids["ceo"])
    done = world.act(world.task("ceo", started["id"]), "approve", "ceo")
    assert done["status"] == "approved"
    assert [e["action"] for e in done["timeline"]][1:3] == ["transfer", "reassign"]
    assert {t["status"] for t in done["tasks"] if t["id"] in (task, new_task)} == {"transferred"}


def test_withdraw_follows_the_flows_policy(world: World) -> None:
    steps = (approver("director", by_role("sales_director")), approver("ceo", by_role("ceo")))
    world.publish(chain("before", *steps))
    world.publish(chain("never", *steps, withdraw="never"))
    world.publish(chain("running", *steps, withdraw="while_running"))
    early = world.submit(world.contract(), flow="before")
    with pytest.raises(NotAllowed):
        world.act_instance(early["id"], "withdraw", "director")
    withdrawn = world.act_instance(early["id"], "withdraw", "rep", comment="wrong customer")
    assert withdrawn["status"] == "withdrawn"
    assert {t["status"] for t in withdrawn["tasks"]} == {"cancelled"}
    late = world.submit(world.contract(), flow="before")
    world.act(world.task("director", late["id"]), "approve", "director")
    with pytest.raises(ApprovalRefused) as decided:
        world.act_instance(late["id"], "withdraw", "rep")
    assert decided.value.code == "withdraw_not_allowed"
    never = world.submit(world.contract(), flow="never")
    with pytest.raises(ApprovalRefused):
        world.act_instance(never["id"], "withdraw", "rep")
    running = world.submit(world.contract(), flow="running")
    world.act(world.task("director", running["id"]), "approve", "director")
    assert world.act_instance(running["id"], "withdraw", "rep")["status"] == "withdrawn"


def test_remind_comment_and_terminate(world: World) -> None:
    world.publish(chain("talk", approver("finance", by_role("finance"), mode="or_sign")))
    started = world.submit(world.contract())
    reminded = world.act_instance(started["id"], "remind", "rep")
    assert sorted(reminded["timeline"][-1]["details"]["users"]) == sorted(
        world.ids[x] for x in ("fin1", "fin2", "fin3")
    )
    with world.workspace.begin(ENV, readonly=True) as conn:
        kinds = conn.execute(
            select(notification.c.kind).where(notification.c.user_id == world.ids["fin1"])
        ).scalars()
        assert sorted(kinds) == ["remind", "task"]
    with pytest.raises(Invalid):
        world.act_instance(started["id"], "comment", "fin2")
    commented = world.act_instance(started["id"], "comment", "fin2", comment="看过了")
    assert commented["timeline"][-1]["comment"] == "看过了"
    with pytest.raises(NotAllowed):
        world.act_instance(started["id"], "comment", "outsider", comment="hi")
    with pytest.raises(NotAllowed):
        world.act_instance(started["id"], "terminate", "rep")
    ended = world.act_instance(started["id"], "terminate", "boss", comment="duplicate")
    assert ended["status"] == "terminated"
    assert world.pending("fin1") == []


def test_sequential_steps_go_one_after_the_other(world: World) -> None:
    legal1, legal2 = world.ids["legal1"], world.ids["legal2"]
    world.publish(chain("seq", approver("legal", users(legal2, legal1), mode="sequential")))
    started = world.submit(world.contract())
    assert world.pending("legal1", started["id"]) == []
    world.act(world.task("legal2", started["id"]), "approve", "legal2")
    assert world.act(world.task("legal1", started["id"]), "approve", "legal1")["status"] == (
        "approved"
    )


def test_a_return_inside_a_parallel_branch_leaves_the_other_branch_alone(world: World) -> None:
    legal1, legal2, fin1 = (world.ids[x] for x in ("legal1", "legal2", "fin1"))
    world.publish(
        flow(
            "branch_return",
            [
                node("split", "parallel_split", branches=["draft_check", "finance"]),
                approver("draft_check", users(legal1), next="final_check"),
                approver("final_check", users(legal2), returnable_to=["draft_check"], next="join"),
                approver("finance", users(fin1), next="join"),
                node("join", "parallel_join", next="end"),
                node("end", "end", outcome="approved"),
            ],
        )
    )
    started = world.submit(world.contract())
    world.act(world.task("legal1", started["id"]), "approve", "legal1")
    back = world.act(world.task("legal2", started["id"]), "return", "legal2", to="draft_check")
    assert sorted(s["node_id"] for s in back["current"]) == ["draft_check", "finance"]
    world.act(world.task("fin1", started["id"]), "approve", "fin1")
    world.act(world.task("legal1", started["id"]), "approve", "legal1")
    done = world.act(world.task("legal2", started["id"]), "approve", "legal2")
    assert done["status"] == "approved"

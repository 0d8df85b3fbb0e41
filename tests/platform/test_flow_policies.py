"""Who approves: assignee sources and the policies applied in RESOLUTION_ORDER, each automatic
decision written to the timeline (both databases)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from formloom.platform.errors import Invalid
from formloom.platform.settings import Settings
from tests.platform.flow_world import World, approver, by_role, chain, make_world, users


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    yield from make_world(settings)


def auto_events(instance: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    """(action, node, reason) of the timeline's automatic entries."""
    return [
        (e["action"], e["node_id"], e["details"].get("reason"))
        for e in instance["timeline"]
        if e["automatic"] and e["action"].startswith("auto_")
    ]


def test_an_empty_approver_is_approved_automatically_and_the_timeline_says_why(
    world: World,
) -> None:
    world.publish(
        chain(
            "empty",
            approver(
                "account_manager",
                {"type": "record_field", "field": "account_manager"},
                empty_approver={"action": "auto_approve"},
            ),
            approver("ceo", by_role("ceo")),
        )
    )
    started = world.submit(world.contract())  # no account manager
    assert auto_events(started) == [("auto_approve", "account_manager", "empty_approve")]
    assert [s["node_id"] for s in started["current"]] == ["ceo"]
    reason = next(e for e in started["timeline"] if e["action"] == "auto_approve")["reason"]
    assert reason == "no approver, approved automatically"
    zh = world.client.get(
        f"/api/envs/production/approvals/instances/{started['id']}",
        headers={**world.headers["rep"], "Accept-Language": "zh-CN"},
    ).json()
    assert "审批人为空，自动通过" in [e["reason"] for e in zh["timeline"]]


def test_empty_approver_rejects_or_hands_to_the_flow_admin(world: World) -> None:
    nobody = {"type": "record_field", "field": "account_manager"}
    world.publish(
        chain("reject_empty", approver("am", nobody, empty_approver={"action": "auto_reject"}))
    )
    world.publish(chain("admin_empty", approver("am", nobody), admin=world.ids["vp"]))
    rejected = world.submit(world.contract(), flow="reject_empty")
    assert rejected["status"] == "rejected"
    assert auto_events(rejected) == [("auto_reject", "am", "empty_reject")]
    handed = world.submit(world.contract(), flow="admin_empty")
    assert auto_events(handed) == [("auto_assign", "am", "empty_admin")]
    assert [e["details"] for e in handed["timeline"] if e["action"] == "auto_assign"] == [
        {"reason": "empty_admin", "users": [world.ids["vp"]]}
    ]
    assert world.pending("vp", handed["id"])


def test_a_submitter_who_is_the_approver_is_skipped_or_handed_to_their_manager(
    world: World,
) -> None:
    rep = world.ids["rep"]
    world.publish(
        chain(
            "self",
            approver("alone", users(rep), approver_is_submitter="skip"),
            approver("pair", users(rep, world.ids["ceo"]), approver_is_submitter="skip"),
            approver("upward", users(rep), approver_is_submitter="manager"),
        )
    )
    started = world.submit(world.contract())
    assert auto_events(started) == [
        ("auto_skip", "alone", "submitter_skipped"),
        ("auto_approve", "alone", "submitter_only"),
        ("auto_skip", "pair", "submitter_skipped"),
    ]
    assert [t["assignee_id"] for t in started["current"][0]["tasks"]] == [world.ids["ceo"]]
    moved = world.act(world.task("ceo", started["id"]), "approve", "ceo")
    assert [t["assignee_id"] for t in moved["current"][0]["tasks"]] == [world.ids["mgr"]]
    assert moved["timeline"][-1]["details"] == {
        "reason": "submitter_manager",
        "users": [world.ids["mgr"]],
    }


def test_a_repeated_approver_approves_once_for_all_or_only_when_consecutive(
    world: World,
) -> None:
    director, ceo = world.ids["director"], world.ids["ceo"]
    steps = (
        approver("first", users(director)),
        approver("second", users(ceo)),
        approver("third", users(director, ceo), mode="countersign"),
    )
    world.publish(chain("once", *steps, policies={"repeated_approver": "once_for_all"}))
    world.publish(chain("consecutive", *steps, policies={"repeated_approver": "consecutive_only"}))
    once = world.submit(world.contract(), flow="once")
    world.act(world.task("director", once["id"]), "approve", "director")
    done = world.act(world.task("ceo", once["id"]), "approve", "ceo")
    assert done["status"] == "approved"
    assert auto_events(done) == [("auto_approve", "third", "repeated_approver")]
    assert next(e for e in done["timeline"] if e["action"] == "auto_approve")["details"][
        "users"
    ] == [director, ceo]
    consecutive = world.submit(world.contract(), flow="consecutive")
    world.act(world.task("director", consecutive["id"]), "approve", "director")
    third = world.act(world.task("ceo", consecutive["id"]), "approve", "ceo")
    assert third["status"] == "running"  # the director approved two steps back: again
    assert [t["assignee_id"] for t in third["current"][0]["tasks"]] == [director]
    auto = [t for t in third["tasks"] if t["auto"] == "repeated_approver"]
    assert [t["assignee_id"] for t in auto] == [ceo]


def test_a_step_decides_by_itself_with_auto_decision(world: World) -> None:
    world.publish(chain("off", approver("paused", auto_decision="auto_approve")))
    instance = world.submit(world.contract())
    assert instance["status"] == "approved"
    assert auto_events(instance) == [("auto_approve", "paused", "auto_decision_approve")]


def test_managers_chains_and_team_heads_come_from_the_org_chart(world: World) -> None:
    world.publish(
        chain(
            "org",
            approver("direct", {"type": "manager"}),
            approver("second_level", {"type": "manager", "level": 2}),
            approver("chain", {"type": "manager_chain", "up_to_level": 3}, mode="sequential"),
            approver("head", {"type": "team_head"}),
            approver("owner", {"type": "record_field", "field": "owner_id"}),
        )
    )
    started = world.submit(world.contract())
    mgr, vp = world.ids["mgr"], world.ids["vp"]
    seen = []
    for login in ("mgr", "vp", "mgr", "vp", "mgr", "rep"):
        current = world.instance(started["id"])["current"]
        pending = [t["assignee_id"] for t in current[0]["tasks"] if t["status"] == "pending"]
        seen.append((current[0]["node_id"], pending))
        world.act(world.task(login, started["id"]), "approve", login)
    # the chain stops at the top (vp has no manager); `east` has no leader: its parent's
    assert seen == [
        ("direct", [mgr]),
        ("second_level", [vp]),
        ("chain", [mgr]),
        ("chain", [vp]),
        ("head", [mgr]),
        ("owner", [world.ids["rep"]]),
    ]
    assert world.instance(started["id"])["status"] == "approved"


def test_the_submitter_and_the_previous_approver_choose_approvers(world: World) -> None:
    world.publish(
        chain(
            "chosen",
            approver(
                "picked",
                {"type": "submitter_choice", "among": {"roles": ["legal"]}},
            ),
            approver("next_one", {"type": "previous_approver_choice", "multiple": True}),
        )
    )
    record_id = world.contract()
    with pytest.raises(Invalid) as missing:
        world.submit(record_id)
    assert missing.value.issues[0].code == "choice_required"
    assert missing.value.issues[0].path == "/approvers/picked"
    with pytest.raises(Invalid) as outside:
        world.submit(record_id, approvers={"picked": [world.ids["ceo"]]})
    assert outside.value.issues[0].code == "invalid_choice"
    started = world.submit(record_id, approvers={"picked": [world.ids["legal2"]]})
    task = world.task("legal2", started["id"])
    with pytest.raises(Invalid) as unchosen:
        world.act(task, "approve", "legal2")
    assert unchosen.value.issues[0].code == "choice_required"
    chosen = [world.ids["fin1"], world.ids["fin2"]]
    after = world.act(task, "approve", "legal2", next_approvers={"next_one": chosen})
    assert [t["assignee_id"] for t in after["current"][0]["tasks"]] == chosen

"""Teams: the tree, its lookups (sub-teams, members) and loop refusal, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from formloom.platform import teams
from formloom.platform.caller import PLATFORM_CALLER, Caller
from formloom.platform.errors import Conflict, Forbidden, Invalid, NotFound
from formloom.platform.identity import members_of, team_and_descendants, team_ids_of
from formloom.platform.tables import security_audit
from tests.identity import create_team, create_user, principal_of


@pytest.fixture
def tree(workspace) -> dict[str, int]:
    """sales → (east → shanghai, west); support on its own."""
    ids = {"sales": create_team(workspace, "sales")}
    ids["east"] = create_team(workspace, "east", parent_id=ids["sales"])
    ids["west"] = create_team(workspace, "west", parent_id=ids["sales"])
    ids["shanghai"] = create_team(workspace, "shanghai", parent_id=ids["east"])
    ids["support"] = create_team(workspace, "support")
    return ids


def test_team_and_descendants(workspace, tree):
    with workspace.begin(readonly=True) as conn:
        assert team_and_descendants(conn, [tree["sales"]]) == {
            tree["sales"],
            tree["east"],
            tree["west"],
            tree["shanghai"],
        }
        assert team_and_descendants(conn, [tree["east"], tree["support"]]) == {
            tree["east"],
            tree["shanghai"],
            tree["support"],
        }
        assert team_and_descendants(conn, [tree["shanghai"]]) == {tree["shanghai"]}
        assert team_and_descendants(conn, []) == set()


def test_members_of_counts_direct_members_only(workspace, tree):
    ann = create_user(workspace, "ann", teams=[tree["shanghai"]])
    bob = create_user(workspace, "bob", teams=[tree["east"], tree["support"]])
    create_user(workspace, "cat", teams=[tree["west"]])

    with workspace.begin(readonly=True) as conn:
        assert members_of(conn, [tree["east"]]) == {bob}
        assert members_of(conn, team_and_descendants(conn, [tree["east"]])) == {ann, bob}
        assert members_of(conn, []) == set()
        assert team_ids_of(conn, bob) == {tree["east"], tree["support"]}


def test_a_team_cannot_go_under_its_own_descendant(workspace, tree):
    with pytest.raises(Invalid) as refused:
        teams.update_team(
            workspace, tree["sales"], {"parent_id": tree["shanghai"]}, caller=PLATFORM_CALLER
        )

    issue = refused.value.issues[0]
    assert (issue.path, issue.code) == ("/parent_id", "team_cycle")
    assert "sales → east → shanghai" in issue.message
    with pytest.raises(Invalid, match="its own parent"):
        teams.update_team(
            workspace, tree["east"], {"parent_id": tree["east"]}, caller=PLATFORM_CALLER
        )


def test_cycle_message_in_chinese(workspace, tree):
    with pytest.raises(Invalid) as refused:
        teams.update_team(
            workspace,
            tree["east"],
            {"parent_id": tree["shanghai"]},
            caller=Caller(PLATFORM_CALLER.principal, lang="zh"),
        )

    assert "循环" in refused.value.issues[0].message


def test_moving_labels_and_leader_are_audited(workspace, tree):
    leader = create_user(workspace, "lead")

    moved = teams.update_team(
        workspace,
        tree["shanghai"],
        {"parent_id": tree["west"], "leader_id": leader, "label_zh": "上海"},
        caller=PLATFORM_CALLER,
    )

    assert (moved["parent_id"], moved["leader_id"]) == (tree["west"], leader)
    assert moved["label"] == {"en": "shanghai", "zh": "上海"}
    with workspace.begin(readonly=True) as conn:
        last = conn.execute(
            select(security_audit).order_by(security_audit.c.id.desc()).limit(1)
        ).one()
    assert last.action == "team.updated"
    assert last.details["changes"]["parent_id"] == [tree["east"], tree["west"]]


def test_members_are_added_and_removed(workspace, tree):
    ann = create_user(workspace, "ann")
    bob = create_user(workspace, "bob")

    added = teams.add_members(workspace, tree["west"], [ann, bob, ann], caller=PLATFORM_CALLER)
    teams.add_members(workspace, tree["west"], [ann], caller=PLATFORM_CALLER)
    teams.remove_member(workspace, tree["west"], ann, caller=PLATFORM_CALLER)

    assert added["member_ids"] == [ann, bob]
    found = teams.get_team(workspace, tree["west"], caller=PLATFORM_CALLER)
    assert [m["login"] for m in found["members"]] == ["bob"]
    with pytest.raises(NotFound, match="not a member"):
        teams.remove_member(workspace, tree["west"], ann, caller=PLATFORM_CALLER)
    with pytest.raises(Invalid, match="user 999"):
        teams.add_members(workspace, tree["west"], [999], caller=PLATFORM_CALLER)


def test_create_refusals(workspace, tree):
    with pytest.raises(Conflict):
        create_team(workspace, "sales")
    with pytest.raises(Invalid) as bad:
        teams.create_team(
            workspace,
            teams.NewTeam(name="Bad Name", parent_id=999, leader_id=998),
            caller=PLATFORM_CALLER,
        )
    assert [i.code for i in bad.value.issues] == ["invalid_name", "unknown_user", "unknown_team"]


def test_listing_and_permissions(workspace, tree):
    clerk = create_user(workspace, "clerk", teams=[tree["support"]])

    listed = teams.list_teams(workspace, caller=PLATFORM_CALLER)

    assert [t["name"] for t in listed] == ["east", "sales", "shanghai", "support", "west"]
    assert listed[3]["member_ids"] == [clerk]
    with pytest.raises(Forbidden):
        teams.list_teams(workspace, caller=Caller(principal_of(workspace, clerk)))

"""Users and role assignments through the services, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from formloom.platform import credentials, role_assignments, users
from formloom.platform.caller import PLATFORM_CALLER, Caller
from formloom.platform.environments import create_environment, drop_environment
from formloom.platform.errors import Conflict, Forbidden, Invalid, NotFound
from formloom.platform.identity import roles_of
from formloom.platform.principal import Principal
from formloom.platform.tables import credential, security_audit, user
from tests.identity import PASSWORD, bearer_token, create_team, create_user, principal_of


def audit_actions(workspace) -> list[str]:
    with workspace.begin(readonly=True) as conn:
        query = select(security_audit.c.action).order_by(security_audit.c.id)
        return list(conn.execute(query).scalars())


def test_create_normalises_login_email_and_mobile(workspace):
    # when
    created = users.create_user(
        workspace,
        users.NewUser(
            login=" Zhang.Wei ",
            password=PASSWORD,
            display_name_en="Zhang Wei",
            display_name_zh="张伟",
            email="Zhang.Wei@Example.COM",
            mobile="138-0013-8000",
            language="zh",
        ),
        caller=PLATFORM_CALLER,
    )

    # then
    assert created["login"] == "zhang.wei"
    assert created["email"] == "Zhang.Wei@example.com"
    assert created["mobile"] == "+8613800138000"
    assert created["display_name"] == {"en": "Zhang Wei", "zh": "张伟"}
    assert created["active"] and not created["admin"] and created["password_set"]
    assert "password_hash" not in created
    with workspace.begin(readonly=True) as conn:
        stored = conn.execute(select(user.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_create_reports_every_problem_at_once(workspace):
    bad = users.NewUser(
        login="Bad Login!",
        password="short1",
        email="not-an-email",
        mobile="12",
        language="fr",
        manager_id=999,
        team_ids=[77],
        roles={"nowhere": ["Sales Rep"]},
    )

    with pytest.raises(Invalid) as refused:
        users.create_user(workspace, bad, caller=Caller(PLATFORM_CALLER.principal, lang="zh"))

    paths = [(i.path, i.code) for i in refused.value.issues]
    assert paths == [
        ("/login", "invalid_login"),
        ("/email", "invalid_email"),
        ("/mobile", "invalid_phone"),
        ("/language", "unknown_language"),
        ("/manager_id", "unknown_user"),
        ("/password", "password_too_short"),
        ("/team_ids", "unknown_team"),
        ("/roles/nowhere", "unknown_environment"),
        ("/roles/nowhere/0", "invalid_role_name"),
    ]
    assert "登录名" in refused.value.issues[0].message
    assert users.count_users(workspace) == 0


def test_logins_are_unique_whatever_the_case(workspace):
    create_user(workspace, "li.na")

    with pytest.raises(Conflict) as taken:
        create_user(workspace, "LI.NA")

    assert taken.value.issues[0].code == "login_taken"


def test_update_changes_profile_and_teams_and_audits_the_values(workspace):
    boss = create_user(workspace, "boss")
    sales = create_team(workspace, "sales")
    user_id = create_user(workspace, "wang", teams=[sales])

    # when
    updated = users.update_user(
        workspace,
        user_id,
        {
            "display_name_zh": "王芳",
            "email": "wang@example.com",
            "manager_id": boss,
            "team_ids": [],
        },
        caller=PLATFORM_CALLER,
    )

    # then
    assert updated["display_name"]["zh"] == "王芳"
    assert updated["manager_id"] == boss and updated["team_ids"] == []
    with workspace.begin(readonly=True) as conn:
        last = conn.execute(
            select(security_audit).order_by(security_audit.c.id.desc()).limit(1)
        ).one()
    assert last.action == "user.updated" and last.target == "user:wang"
    assert last.details["changes"]["display_name_zh"] == ["", "王芳"]
    assert last.details["changes"]["manager_id"] == [None, boss]
    assert last.details["teams"] == {"added": [], "removed": [sales]}


def test_manager_loops_are_refused_naming_the_chain(workspace):
    a = create_user(workspace, "a.user")
    b = create_user(workspace, "b.user", manager_id=a)
    c = create_user(workspace, "c.user", manager_id=b)

    with pytest.raises(Invalid) as refused:
        users.update_user(workspace, a, {"manager_id": c}, caller=PLATFORM_CALLER)

    issue = refused.value.issues[0]
    assert issue.code == "manager_cycle"
    assert "c.user → b.user → a.user" in issue.message
    with pytest.raises(Invalid):
        users.update_user(workspace, a, {"manager_id": a}, caller=PLATFORM_CALLER)


def test_non_admins_may_not_manage_users(workspace):
    clerk = create_user(workspace, "clerk")
    caller = Caller(principal_of(workspace, clerk))

    with pytest.raises(Forbidden) as refused:
        users.create_user(workspace, users.NewUser(login="x1"), caller=caller)
    with pytest.raises(Forbidden):
        users.list_users(workspace, users.UserQuery(), caller=caller)
    with pytest.raises(Forbidden):
        role_assignments.change_roles(
            workspace, clerk, "production", caller=caller, replace=["boss"]
        )

    assert "administrator" in refused.value.message


def test_deactivation_revokes_every_credential(workspace):
    create_user(workspace, "root", admin=True)
    user_id = create_user(workspace, "sam")
    bearer_token(workspace, user_id)

    # when
    users.set_active(workspace, user_id, False, caller=PLATFORM_CALLER)

    # then
    with workspace.begin(readonly=True) as conn:
        live = conn.execute(
            select(credential.c.id).where(
                credential.c.user_id == user_id, credential.c.revoked_at.is_(None)
            )
        ).all()
    assert live == []
    assert audit_actions(workspace)[-1] == "user.deactivated"
    activated = users.set_active(workspace, user_id, True, caller=PLATFORM_CALLER)
    assert activated["active"] and audit_actions(workspace)[-1] == "user.activated"


def test_nobody_locks_the_administrators_out(workspace):
    root = create_user(workspace, "root", admin=True)
    other = create_user(workspace, "other", admin=True)
    as_root = Caller(principal_of(workspace, root))

    with pytest.raises(Conflict, match="deactivate yourself"):
        users.set_active(workspace, root, False, caller=as_root)
    with pytest.raises(Conflict, match="your own"):
        users.set_admin(workspace, root, False, caller=as_root)
    users.set_admin(workspace, other, False, caller=as_root)
    with pytest.raises(Conflict, match="last active administrator"):
        users.set_active(workspace, root, False, caller=PLATFORM_CALLER)


def test_admin_grants_and_revocations_are_audited(workspace):
    create_user(workspace, "root", admin=True)
    user_id = create_user(workspace, "sam")

    granted = users.set_admin(workspace, user_id, True, caller=PLATFORM_CALLER)
    revoked = users.set_admin(workspace, user_id, False, caller=PLATFORM_CALLER)

    assert granted["admin"] and not revoked["admin"]
    assert audit_actions(workspace)[-2:] == ["admin.granted", "admin.revoked"]


def test_list_filters_and_pages(workspace):
    even = create_team(workspace, "even")
    ids = [
        create_user(workspace, f"user{n}", admin=n == 0, teams=[even] if n % 2 == 0 else ())
        for n in range(5)
    ]
    users.set_active(workspace, ids[4], False, caller=PLATFORM_CALLER)

    def logins(**filters) -> list[str]:
        page = users.list_users(workspace, users.UserQuery(**filters), caller=PLATFORM_CALLER)
        return [u["login"] for u in page["items"]]

    assert logins(admin=True) == ["user0"]
    assert logins(active=False) == ["user4"]
    assert logins(team_id=even) == ["user0", "user2", "user4"]
    assert logins(q="USER3") == ["user3"]
    first = users.list_users(workspace, users.UserQuery(limit=2), caller=PLATFORM_CALLER)
    assert [u["login"] for u in first["items"]] == ["user0", "user1"]
    assert logins(limit=2, after=int(first["next"])) == ["user2", "user3"]


def test_roles_are_set_per_environment_and_audited(workspace):
    create_environment(workspace, "sandbox")
    user_id = create_user(workspace, "sam", roles={"production": ["sales_rep"]})

    # when
    now = role_assignments.change_roles(
        workspace, user_id, "sandbox", caller=PLATFORM_CALLER, add=["designer", "sales_rep"]
    )
    after_revoke = role_assignments.change_roles(
        workspace, user_id, "sandbox", caller=PLATFORM_CALLER, remove=["designer"]
    )

    # then
    assert now == ["designer", "sales_rep"] and after_revoke == ["sales_rep"]
    with workspace.begin(readonly=True) as conn:
        assert roles_of(conn, user_id, "production") == ["sales_rep"]
        assert roles_of(conn, user_id, "sandbox") == ["sales_rep"]
        assert roles_of(conn, user_id, "elsewhere") == []
    listed = role_assignments.list_assignments(workspace, "sandbox", caller=PLATFORM_CALLER)
    assert listed == [{"login": "sam", "role": "sales_rep"}]
    assert audit_actions(workspace).count("roles.changed") == 3


def test_role_assignment_refusals(workspace):
    user_id = create_user(workspace, "sam")

    with pytest.raises(Invalid) as bad_name:
        role_assignments.change_roles(
            workspace, user_id, "production", caller=PLATFORM_CALLER, replace=["Sales-Rep"]
        )
    with pytest.raises(NotFound, match="environment `nowhere`"):
        role_assignments.change_roles(
            workspace, user_id, "nowhere", caller=PLATFORM_CALLER, replace=["a"]
        )
    with pytest.raises(NotFound, match="user 999"):
        role_assignments.change_roles(
            workspace, 999, "production", caller=PLATFORM_CALLER, replace=["a"]
        )

    assert bad_name.value.issues[0].path == "/roles/production/0"


def test_dropping_an_environment_forgets_its_roles_and_bound_credentials(workspace):
    create_environment(workspace, "sandbox")
    user_id = create_user(workspace, "sam", roles={"sandbox": ["designer"]})
    token = bearer_token(workspace, user_id, env="sandbox")

    drop_environment(workspace, "sandbox")
    create_environment(workspace, "sandbox")

    with workspace.begin(readonly=True) as conn:
        assert roles_of(conn, user_id, "sandbox") == []
        assert credentials.find(conn, token)["revoked_at"] is not None


def test_the_platform_itself_has_no_own_user(workspace):
    caller = Caller(Principal(user_id=None, login="system", admin=True))

    assert users.get_own_user(workspace, caller=caller) is None

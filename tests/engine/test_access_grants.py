"""The union of a user's roles: widest scopes, any boolean, most permissive field modes."""

from __future__ import annotations

from typing import Any

import pytest

from formloom.engine.access import (
    ACTIONS,
    NO_ACCESS,
    EntityGrant,
    Grants,
    RoleDoc,
    UnknownAction,
    union_of,
    widest_scope,
)


def role(name: str, permissions: tuple[str, ...] = (), **entities: Any) -> RoleDoc:
    """A role document; ``default=`` stands for the ``"*"`` entry."""
    if "default" in entities:
        entities["*"] = entities.pop("default")
    return RoleDoc.model_validate(
        {
            "name": name,
            "label": {"zh": name, "en": name},
            "permissions": list(permissions),
            "entities": entities,
        }
    )


def test_no_roles_give_nothing() -> None:
    # given
    grants = union_of([])

    # when
    opportunity = grants.entity("opportunity")

    # then
    assert grants == NO_ACCESS
    assert grants.roles == ()
    assert grants.permissions == frozenset()
    assert opportunity == EntityGrant("opportunity")
    assert not any(opportunity.may(action) for action in ACTIONS)


def test_one_role_is_its_own_union() -> None:
    rep = role(
        "rep",
        opportunity={
            "create": True,
            "read": "team",
            "update": "own",
            "export": True,
            "fields": {"margin": "hidden", "stage": "read_only", "amount": "editable"},
        },
    )

    grant = union_of([rep]).entity("opportunity")

    assert grant == EntityGrant(
        "opportunity",
        create=True,
        read="team",
        update="own",
        delete="none",
        export=True,
        import_=False,
        fields={"margin": "hidden", "stage": "read_only"},
    )
    assert grant.hidden_fields() == {"margin"}
    assert grant.read_only_fields() == {"stage"}
    assert grant.field_mode("margin") == "hidden"
    assert grant.field_mode("stage") == "read_only"
    assert grant.field_mode("amount") == "editable"
    assert grant.field_mode("anything_else") == "editable"


def test_scopes_take_the_widest_and_booleans_any() -> None:
    a = role("a", opportunity={"read": "own", "update": "own", "delete": "own", "export": True})
    b = role("b", opportunity={"create": True, "read": "team", "update": "own"})
    c = role("c", opportunity={"read": "all", "import": True, "update": "all"})

    grant = union_of([a, b, c]).entity("opportunity")

    assert (grant.read, grant.update, grant.delete) == ("all", "all", "own")
    assert (grant.create, grant.export, grant.import_) == (True, True, True)


def test_may_and_scope_answer_per_action() -> None:
    grant = union_of(
        [role("a", opportunity={"read": "team", "update": "own", "export": True})]
    ).entity("opportunity")

    assert {action: grant.may(action) for action in ACTIONS} == {
        "create": False,
        "read": True,
        "update": True,
        "delete": False,
        "export": True,
        "import": False,
    }
    assert [grant.scope(a) for a in ("read", "update", "delete", "export")] == [
        "team",
        "own",
        "none",
        "team",
    ]


def test_export_reaches_nothing_when_it_is_not_allowed() -> None:
    grant = union_of([role("a", opportunity={"read": "all"})]).entity("opportunity")

    assert grant.scope("export") == "none"


def test_unknown_actions_fail_loudly() -> None:
    grant = EntityGrant("opportunity")

    with pytest.raises(UnknownAction) as unknown:
        grant.may("raed")
    with pytest.raises(UnknownAction) as unscoped:
        grant.scope("create")

    assert "did you mean `read`?" in str(unknown.value)
    assert "`create` has no scope" in str(unscoped.value)


def test_a_field_hidden_by_one_role_shows_through_another_that_opens_the_entity() -> None:
    a = role("a", opportunity={"read": "all", "fields": {"margin": "hidden"}})
    b = role("b", opportunity={"read": "own"})

    grant = union_of([a, b]).entity("opportunity")

    assert grant.field_mode("margin") == "editable"
    assert grant.fields == {}


def test_a_field_takes_the_most_permissive_mode_among_the_roles() -> None:
    a = role("a", opportunity={"read": "all", "fields": {"margin": "hidden", "stage": "hidden"}})
    b = role("b", opportunity={"read": "own", "fields": {"margin": "read_only", "stage": "hidden"}})

    grant = union_of([a, b]).entity("opportunity")

    assert grant.fields == {"margin": "read_only", "stage": "hidden"}


def test_roles_that_do_not_open_the_entity_take_no_part_in_field_modes() -> None:
    # given: b opens nothing on opportunity (its "*" gives no read), c only reads leads
    a = role("a", opportunity={"read": "all", "fields": {"margin": "hidden"}})
    b = role("b", default={"export": False})
    c = role("c", lead={"read": "all"})

    # when
    grant = union_of([a, b, c]).entity("opportunity")

    # then
    assert grant.field_mode("margin") == "hidden"


def test_a_create_only_role_takes_part_in_field_modes() -> None:
    a = role("a", opportunity={"read": "all", "fields": {"margin": "hidden"}})
    b = role("b", opportunity={"create": True})

    grant = union_of([a, b]).entity("opportunity")

    assert grant.field_mode("margin") == "editable"
    assert grant.read == "all"


def test_the_default_entry_covers_entities_a_role_does_not_name() -> None:
    a = role("a", default={"read": "all"}, opportunity={"read": "own", "update": "own"})
    b = role("b", lead={"create": True})

    grants = union_of([a, b])

    assert grants.entity("account") == EntityGrant("account", read="all")
    lead = grants.entity("lead")
    assert (lead.read, lead.create) == ("all", True)
    opportunity = grants.entity("opportunity")
    assert (opportunity.read, opportunity.update) == ("own", "own")


def test_a_named_entry_replaces_the_default_entry_whole() -> None:
    a = role("a", default={"read": "all", "export": True}, opportunity={"create": True})

    grant = union_of([a]).entity("opportunity")

    assert (grant.read, grant.export, grant.create) == ("none", False, True)


def test_a_default_entry_of_another_role_shows_fields_a_named_entry_hides() -> None:
    a = role("a", opportunity={"read": "own", "fields": {"margin": "hidden"}})
    b = role("b", default={"read": "all"})

    grant = union_of([a, b]).entity("opportunity")

    assert grant.read == "all"
    assert grant.field_mode("margin") == "editable"


def test_permissions_are_the_union_and_role_names_are_kept_once_in_order() -> None:
    a = role("admin_lite", ("manage_metadata",))
    b = role("ops", ("manage_users", "manage_metadata"))

    grants = union_of([b, a, b])

    assert grants.permissions == {"manage_metadata", "manage_users"}
    assert grants.roles == ("ops", "admin_lite")


def test_grants_are_immutable_values() -> None:
    grants = union_of([role("a", opportunity={"read": "all", "fields": {"margin": "hidden"}})])
    grant = grants.entity("opportunity")

    with pytest.raises(TypeError):
        grant.fields["margin"] = "editable"  # type: ignore[index]
    assert isinstance(hash(grant), int)
    assert isinstance(grants, Grants)
    assert union_of([role("a", opportunity={"read": "all", "fields": {"margin": "hidden"}})]) == (
        grants
    )


def test_widest_scope_orders_none_own_team_all() -> None:
    assert widest_scope(["own", "none"]) == "own"
    assert widest_scope(["team", "own"]) == "team"
    assert widest_scope(["own", "all", "team"]) == "all"
    assert widest_scope([]) == "none"

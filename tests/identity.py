"""Users, teams and credentials for tests, made through the real identity services.

``create_user`` creates a user (teams by id, or by name: a missing named team is
created) with role assignments; ``bearer_headers`` issues a login token for a
user and returns the ``Authorization`` header that carries it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import select

from formloom.platform import teams as team_service
from formloom.platform import tokens, users
from formloom.platform.caller import PLATFORM_CALLER, Caller
from formloom.platform.database import Workspace
from formloom.platform.principal import Principal
from formloom.platform.tables import team, user

PASSWORD = "correct horse 42"


def create_user(
    workspace: Workspace,
    login: str,
    *,
    password: str | None = PASSWORD,
    admin: bool = False,
    teams: Iterable[int | str] = (),
    roles: dict[str, list[str]] | None = None,
    manager_id: int | None = None,
    display_name: str = "",
    email: str | None = None,
) -> int:
    """Create a user; its id."""
    new = users.NewUser(
        login=login,
        password=password,
        admin=admin,
        display_name_en=display_name,
        email=email,
        manager_id=manager_id,
        team_ids=[_team_id(workspace, t) for t in teams],
        roles=roles or {},
    )
    created: int = users.create_user(workspace, new, caller=PLATFORM_CALLER)["id"]
    return created


def principal_of(workspace: Workspace, user_id: int, *, env: str | None = None) -> Principal:
    """The principal a credential of ``user_id`` (bound to ``env``) authenticates as."""
    with workspace.begin(readonly=True) as conn:
        row = conn.execute(select(user).where(user.c.id == user_id)).one()
    return Principal(user_id=user_id, login=row.login, admin=row.admin, environment=env)


def bearer_token(
    workspace: Workspace,
    user_id: int,
    *,
    env: str | None = None,
    lifetime: timedelta | None = None,
) -> str:
    """A login token of ``user_id`` issued by the token service."""
    caller = Caller(principal_of(workspace, user_id, env=env))
    return tokens.create_token(workspace, caller=caller, env=env, lifetime=lifetime).secret


def bearer_headers(workspace: Workspace, user_id: int, *, env: str | None = None) -> dict[str, str]:
    """``{"Authorization": "Bearer <token>"}`` for ``user_id`` (bound to ``env`` if given)."""
    return {"Authorization": f"Bearer {bearer_token(workspace, user_id, env=env)}"}


def create_team(
    workspace: Workspace, name: str, *, parent_id: int | None = None, leader_id: int | None = None
) -> int:
    """Create a team; its id."""
    new = team_service.NewTeam(name=name, parent_id=parent_id, leader_id=leader_id)
    created: int = team_service.create_team(workspace, new, caller=PLATFORM_CALLER)["id"]
    return created


def _team_id(workspace: Workspace, wanted: int | str) -> int:
    if isinstance(wanted, int):
        return wanted
    with workspace.begin(readonly=True) as conn:
        found: int | None = conn.execute(select(team.c.id).where(team.c.name == wanted)).scalar()
    return found if found is not None else create_team(workspace, wanted)

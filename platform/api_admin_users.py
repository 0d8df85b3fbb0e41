"""HTTP routes for managing users and their role assignments: ``/api/admin/users``.

- ``GET ""`` (filters ``q``, ``active``, ``admin``, ``team_id``; ``limit``/``after``
  keyset paging) and ``POST ""``; ``GET|PATCH {id}``.
- ``POST {id}/deactivate`` (revokes every credential of the user), ``POST {id}/activate``,
  ``PUT {id}/password``, ``POST|DELETE {id}/admin``, ``POST {id}/unlock`` (lifts a login lock).
- ``GET {id}/roles``, ``PUT {id}/roles/{env}`` ``{roles: [...]}``.

Every route needs a user manager (today: an administrator).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from formloom.platform import role_assignments, user_passwords, users
from formloom.platform.auth_deps import CallerDep
from formloom.platform.deps import WorkspaceDep

router = APIRouter(prefix="/api/admin/users", tags=["admin"])


class DisplayName(BaseModel):
    model_config = ConfigDict(extra="forbid")

    en: str = Field(default="", max_length=200)
    zh: str = Field(default="", max_length=200)


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    login: str = Field(min_length=1, max_length=200, examples=["zhang.wei"])
    password: SecretStr | None = Field(default=None, max_length=1024)
    display_name: DisplayName = Field(default_factory=DisplayName)
    email: str | None = None
    mobile: str | None = None
    manager_id: int | None = None
    language: str = "en"
    admin: bool = False
    team_ids: list[int] = Field(default_factory=list)
    roles: dict[str, list[str]] = Field(
        default_factory=dict, description="Role names per environment"
    )


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | None = None
    email: str | None = None
    mobile: str | None = None
    manager_id: int | None = None
    language: str | None = None
    team_ids: list[int] | None = None


class PasswordSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: SecretStr = Field(max_length=1024)


class RolesPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: list[str] = Field(max_length=200, examples=[["sales_rep"]])


@router.get("")
def list_users(
    caller: CallerDep,
    workspace: WorkspaceDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
    active: bool | None = None,
    admin: bool | None = None,
    team_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=users.MAX_LIMIT)] = 100,
    after: Annotated[int | None, Query(description="`next` of the previous page")] = None,
) -> dict[str, Any]:
    """Users by id, filtered: ``{items, next}``."""
    query = users.UserQuery(
        q=q, active=active, admin=admin, team_id=team_id, limit=limit, after=after
    )
    return users.list_users(workspace, query, caller=caller)


@router.post("", status_code=201)
def create_user(body: UserCreate, caller: CallerDep, workspace: WorkspaceDep) -> dict[str, Any]:
    """Create a user (without ``password`` the user cannot log in until one is set)."""
    new = users.NewUser(
        login=body.login,
        password=body.password.get_secret_value() if body.password is not None else None,
        display_name_en=body.display_name.en,
        display_name_zh=body.display_name.zh,
        email=body.email,
        mobile=body.mobile,
        manager_id=body.manager_id,
        language=body.language,
        admin=body.admin,
        team_ids=body.team_ids,
        roles=body.roles,
    )
    return users.create_user(workspace, new, caller=caller)


@router.get("/{user_id}")
def get_user(user_id: int, caller: CallerDep, workspace: WorkspaceDep) -> dict[str, Any]:
    return users.get_user(workspace, user_id, caller=caller)


@router.patch("/{user_id}")
def update_user(
    user_id: int, body: UserPatch, caller: CallerDep, workspace: WorkspaceDep
) -> dict[str, Any]:
    """Change only the fields sent (``null`` clears email, mobile and manager)."""
    given = body.model_fields_set
    changes: users.UserChanges = {}
    if "display_name" in given and body.display_name is not None:
        sent = body.display_name.model_fields_set
        if "en" in sent:
            changes["display_name_en"] = body.display_name.en
        if "zh" in sent:
            changes["display_name_zh"] = body.display_name.zh
    if "email" in given:
        changes["email"] = body.email
    if "mobile" in given:
        changes["mobile"] = body.mobile
    if "manager_id" in given:
        changes["manager_id"] = body.manager_id
    if "language" in given and body.language is not None:
        changes["language"] = body.language
    if "team_ids" in given and body.team_ids is not None:
        changes["team_ids"] = body.team_ids
    return users.update_user(workspace, user_id, changes, caller=caller)


@router.post("/{user_id}/deactivate")
def deactivate_user(user_id: int, caller: CallerDep, workspace: WorkspaceDep) -> dict[str, Any]:
    """Deactivate: the user's sessions, tokens and API keys stop working at once."""
    return users.set_active(workspace, user_id, False, caller=caller)


@router.post("/{user_id}/activate")
def activate_user(user_id: int, caller: CallerDep, workspace: WorkspaceDep) -> dict[str, Any]:
    return users.set_active(workspace, user_id, True, caller=caller)


@router.put("/{user_id}/password", status_code=204)
def set_password(
    user_id: int, body: PasswordSet, caller: CallerDep, workspace: WorkspaceDep
) -> Response:
    """Set the user's password: their sessions and login tokens end, a login lock lifts."""
    user_passwords.set_password(workspace, user_id, body.password.get_secret_value(), caller=caller)
    return Response(status_code=204)


@router.post("/{user_id}/admin")
def grant_admin(user_id: int, caller: CallerDep, workspace: WorkspaceDep) -> dict[str, Any]:
    return users.set_admin(workspace, user_id, True, caller=caller)


@router.delete("/{user_id}/admin")
def revoke_admin(user_id: int, caller: CallerDep, workspace: WorkspaceDep) -> dict[str, Any]:
    return users.set_admin(workspace, user_id, False, caller=caller)


@router.post("/{user_id}/unlock", status_code=204)
def unlock_user(user_id: int, caller: CallerDep, workspace: WorkspaceDep) -> Response:
    """Lift the lock after too many failed logins."""
    user_passwords.unlock(workspace, user_id, caller=caller)
    return Response(status_code=204)


@router.get("/{user_id}/roles")
def get_roles(user_id: int, caller: CallerDep, workspace: WorkspaceDep) -> dict[str, list[str]]:
    """``{environment: [role names]}``."""
    found: dict[str, list[str]] = users.get_user(workspace, user_id, caller=caller)["roles"]
    return found


@router.put("/{user_id}/roles/{env}")
def put_roles(
    user_id: int, env: str, body: RolesPut, caller: CallerDep, workspace: WorkspaceDep
) -> dict[str, Any]:
    """Make ``roles`` the user's roles in ``env`` (names of role documents)."""
    roles = role_assignments.change_roles(
        workspace, user_id, env, caller=caller, replace=body.roles
    )
    return {"env": env, "roles": roles}

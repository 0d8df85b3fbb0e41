"""HTTP routes for managing teams: ``/api/admin/teams``.

- ``GET ""``, ``POST ""`` ``{name, label: {en, zh}, parent_id?, leader_id?}``.
- ``GET|PATCH {id}`` (a new ``parent_id`` that would close a loop is refused, naming it).
- ``POST {id}/members`` ``{user_ids: [...]}``, ``DELETE {id}/members/{user_id}``.

Every route needs a user manager (today: an administrator).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from formloom.platform import teams
from formloom.platform.auth_deps import CallerDep
from formloom.platform.deps import WorkspaceDep

router = APIRouter(prefix="/api/admin/teams", tags=["admin"])


class TeamLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    en: str = Field(default="", max_length=200)
    zh: str = Field(default="", max_length=200)


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100, examples=["east_sales"])
    label: TeamLabel = Field(default_factory=TeamLabel)
    parent_id: int | None = None
    leader_id: int | None = None


class TeamPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: TeamLabel | None = None
    parent_id: int | None = None
    leader_id: int | None = None


class MembersAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_ids: list[int] = Field(min_length=1, max_length=1000)


@router.get("")
def list_teams(caller: CallerDep, workspace: WorkspaceDep) -> list[dict[str, Any]]:
    """Every team, by name, with its member ids."""
    return teams.list_teams(workspace, caller=caller)


@router.post("", status_code=201)
def create_team(body: TeamCreate, caller: CallerDep, workspace: WorkspaceDep) -> dict[str, Any]:
    new = teams.NewTeam(
        name=body.name,
        label_en=body.label.en,
        label_zh=body.label.zh,
        parent_id=body.parent_id,
        leader_id=body.leader_id,
    )
    return teams.create_team(workspace, new, caller=caller)


@router.get("/{team_id}")
def get_team(team_id: int, caller: CallerDep, workspace: WorkspaceDep) -> dict[str, Any]:
    """The team with its members."""
    return teams.get_team(workspace, team_id, caller=caller)


@router.patch("/{team_id}")
def update_team(
    team_id: int, body: TeamPatch, caller: CallerDep, workspace: WorkspaceDep
) -> dict[str, Any]:
    """Change only the fields sent (``null`` clears parent and leader)."""
    given = body.model_fields_set
    changes: teams.TeamChanges = {}
    if "label" in given and body.label is not None:
        if "en" in body.label.model_fields_set:
            changes["label_en"] = body.label.en
        if "zh" in body.label.model_fields_set:
            changes["label_zh"] = body.label.zh
    if "parent_id" in given:
        changes["parent_id"] = body.parent_id
    if "leader_id" in given:
        changes["leader_id"] = body.leader_id
    return teams.update_team(workspace, team_id, changes, caller=caller)


@router.post("/{team_id}/members")
def add_members(
    team_id: int, body: MembersAdd, caller: CallerDep, workspace: WorkspaceDep
) -> dict[str, Any]:
    return teams.add_members(workspace, team_id, body.user_ids, caller=caller)


@router.delete("/{team_id}/members/{user_id}", status_code=204)
def remove_member(
    team_id: int, user_id: int, caller: CallerDep, workspace: WorkspaceDep
) -> Response:
    teams.remove_member(workspace, team_id, user_id, caller=caller)
    return Response(status_code=204)

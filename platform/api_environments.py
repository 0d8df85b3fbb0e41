"""HTTP routes for environments: ``/api/environments``.

Any signed-in user may list them; creating and dropping one is for admins.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from formloom.platform import environments
from formloom.platform.access import require_admin
from formloom.platform.auth_deps import PrincipalDep
from formloom.platform.deps import WorkspaceDep

router = APIRouter(prefix="/api/environments", tags=["environments"])


class EnvironmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100, examples=["sandbox_1"])
    description: str = Field(default="", max_length=500)


@router.get("")
def list_environments(workspace: WorkspaceDep, principal: PrincipalDep) -> list[dict[str, str]]:
    return [e.as_dict() for e in environments.list_environments(workspace)]


@router.post("", status_code=201)
def create_environment(
    body: EnvironmentCreate, workspace: WorkspaceDep, principal: PrincipalDep
) -> dict[str, str]:
    require_admin(principal)
    created = environments.create_environment(workspace, body.name, description=body.description)
    return created.as_dict()


@router.get("/{name}")
def get_environment(name: str, workspace: WorkspaceDep, principal: PrincipalDep) -> dict[str, str]:
    environments.require_environment(workspace, name)
    return next(e.as_dict() for e in environments.list_environments(workspace) if e.name == name)


@router.delete("/{name}", status_code=204)
def drop_environment(name: str, workspace: WorkspaceDep, principal: PrincipalDep) -> Response:
    require_admin(principal)
    environments.drop_environment(workspace, name)
    return Response(status_code=204)

"""HTTP routes for the pickers of forms: ``/api/envs/{env}/users`` and ``/api/envs/{env}/teams``.

``GET users?q=<letters>&limit=20`` (or ``?id=1&id=2`` for the names of known ids)
answers ``{items: [{id, name, login}]}`` of active users; ``GET teams`` the same
for teams (``{id, name}``). Any signed-in user of the environment may search; the
answers hold no more than names (see :mod:`formloom.platform.directory`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from formloom.platform import directory
from formloom.platform.auth_deps import LangDep, PrincipalDep
from formloom.platform.deps import WorkspaceDep

router = APIRouter(prefix="/api/envs/{env}", tags=["directory"])

Search = Annotated[str | None, Query(max_length=100, description="letters of a name or login")]
Ids = Annotated[list[int] | None, Query(alias="id", description="only these ids")]
Limit = Annotated[int, Query(ge=1, le=directory.MAX_LIMIT)]


@router.get("/users")
def users(
    env: str,
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    lang: LangDep,
    q: Search = None,
    ids: Ids = None,
    limit: Limit = 20,
) -> dict[str, Any]:
    """Active users to pick: by letters of their login or name, or by id."""
    return directory.search_users(
        workspace, env=env, principal=principal, q=q, ids=ids, limit=limit, lang=lang
    )


@router.get("/teams")
def teams(
    env: str,
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    lang: LangDep,
    q: Search = None,
    ids: Ids = None,
    limit: Limit = 20,
) -> dict[str, Any]:
    """Teams to pick: by letters of their name or label, or by id."""
    return directory.search_teams(
        workspace, env=env, principal=principal, q=q, ids=ids, limit=limit, lang=lang
    )

"""HTTP routes for an environment's audit trail (administrators only).

- ``GET /api/envs/{env}/audit/records``: record writes, newest first; filters
  ``entity``, ``record_id``, ``action``, ``actor_id``, ``since``, ``until``;
  ``limit`` and ``after`` (the ``next`` of the previous page); ``format=csv``
  exports every matching entry.
- ``GET /api/envs/{env}/audit/metadata``: published metadata versions (who
  published what, when, with which comment); filters ``kind``, ``published_by``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from formloom.platform import env_audit
from formloom.platform.auth_deps import LangDep, PrincipalDep
from formloom.platform.deps import WorkspaceDep

router = APIRouter(prefix="/api/envs/{env}/audit", tags=["audit"])


@router.get("/records", response_model=None)
def record_writes(
    env: str,
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    lang: LangDep,
    entity: str | None = None,
    record_id: int | None = None,
    action: Annotated[str | None, Query(examples=["update"])] = None,
    actor_id: int | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=env_audit.MAX_LIMIT)] = 100,
    after: Annotated[int | None, Query(description="`next` of the previous page")] = None,
    format: Literal["json", "csv"] = "json",
) -> dict[str, Any] | StreamingResponse:
    """Who created, changed, deleted, restored, purged or transferred which record, when."""
    selection = env_audit.RecordFilter(
        entity=entity,
        record_id=record_id,
        action=action,
        actor_id=actor_id,
        since=since,
        until=until,
    )
    if format == "csv":
        return StreamingResponse(
            env_audit.export_record_writes(
                workspace, env=env, principal=principal, selection=selection
            ),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{env}-record-audit.csv"'},
        )
    return env_audit.record_writes(
        workspace,
        env=env,
        principal=principal,
        selection=selection,
        limit=limit,
        after=after,
        lang=lang,
    )


@router.get("/metadata")
def metadata_publishes(
    env: str,
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    lang: LangDep,
    kind: str | None = None,
    published_by: str | None = None,
    limit: Annotated[int, Query(ge=1, le=env_audit.MAX_LIMIT)] = 100,
) -> list[dict[str, Any]]:
    """Published metadata versions, newest first (role publishes are permission changes)."""
    return env_audit.metadata_publishes(
        workspace,
        env=env,
        principal=principal,
        kind=kind,
        published_by=published_by,
        limit=limit,
        lang=lang,
    )

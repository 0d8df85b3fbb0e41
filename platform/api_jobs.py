"""HTTP routes for background jobs: progress and failures.

Jobs are the platform's own work (recomputing formulas, imports): reading and
retrying them needs the ``manage_metadata`` permission in their environment.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from formloom.platform import jobs
from formloom.platform.access import require_permission
from formloom.platform.auth_deps import PrincipalDep
from formloom.platform.database import Workspace
from formloom.platform.deps import WorkspaceDep
from formloom.platform.environments import PRODUCTION
from formloom.platform.principal import Principal

router = APIRouter(tags=["jobs"])


@router.get("/api/jobs/{job_id}")
def get_job(
    job_id: int,
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    env: str = Query(default=PRODUCTION, description="Environment the job belongs to"),
) -> dict[str, Any]:
    """A job's state and progress (``?env=`` selects the environment, default production)."""
    _require(workspace, env, principal)
    return jobs.get_job(workspace, env, job_id)


@router.get("/api/envs/{env}/jobs")
def list_jobs(
    env: str,
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    status: str | None = Query(default=None, description="queued, running, done or failed"),
    limit: int = Query(default=100, ge=1, le=jobs.MAX_LIST_LIMIT),
) -> list[dict[str, Any]]:
    _require(workspace, env, principal)
    return jobs.list_jobs(workspace, env, status=status, limit=limit)


@router.get("/api/envs/{env}/jobs/{job_id}")
def get_env_job(
    env: str, job_id: int, workspace: WorkspaceDep, principal: PrincipalDep
) -> dict[str, Any]:
    _require(workspace, env, principal)
    return jobs.get_job(workspace, env, job_id)


@router.post("/api/envs/{env}/jobs/{job_id}/retry")
def retry_job(
    env: str, job_id: int, workspace: WorkspaceDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Queue a failed (parked) job again."""
    _require(workspace, env, principal)
    return jobs.retry_job(workspace, env, job_id)


def _require(workspace: Workspace, env: str, principal: Principal) -> None:
    require_permission(workspace, env=env, principal=principal, permission="manage_metadata")

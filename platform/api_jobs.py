"""HTTP routes for background jobs: progress and failures."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from formloom.platform import jobs
from formloom.platform.deps import WorkspaceDep
from formloom.platform.environments import PRODUCTION

router = APIRouter(tags=["jobs"])


@router.get("/api/jobs/{job_id}")
def get_job(
    job_id: int,
    workspace: WorkspaceDep,
    env: str = Query(default=PRODUCTION, description="Environment the job belongs to"),
) -> dict[str, Any]:
    """A job's state and progress (``?env=`` selects the environment, default production)."""
    return jobs.get_job(workspace, env, job_id)


@router.get("/api/envs/{env}/jobs")
def list_jobs(
    env: str,
    workspace: WorkspaceDep,
    status: str | None = Query(default=None, description="queued, running, done or failed"),
    limit: int = Query(default=100, ge=1, le=jobs.MAX_LIST_LIMIT),
) -> list[dict[str, Any]]:
    return jobs.list_jobs(workspace, env, status=status, limit=limit)


@router.get("/api/envs/{env}/jobs/{job_id}")
def get_env_job(env: str, job_id: int, workspace: WorkspaceDep) -> dict[str, Any]:
    return jobs.get_job(workspace, env, job_id)


@router.post("/api/envs/{env}/jobs/{job_id}/retry")
def retry_job(env: str, job_id: int, workspace: WorkspaceDep) -> dict[str, Any]:
    """Queue a failed (parked) job again."""
    return jobs.retry_job(workspace, env, job_id)

"""HTTP route for the security audit log: ``GET /api/admin/audit``.

Filters ``action``, ``actor_id``, ``since``, ``until`` (timestamps with a
timezone); newest first, ``limit`` per page, ``after`` = the ``next`` of the
previous page; ``format=csv`` exports every matching entry as CSV instead.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from formloom.platform import security_audit
from formloom.platform.auth_deps import CallerDep
from formloom.platform.deps import WorkspaceDep

router = APIRouter(prefix="/api/admin/audit", tags=["admin"])


@router.get("", response_model=None)
def list_audit(
    caller: CallerDep,
    workspace: WorkspaceDep,
    action: Annotated[str | None, Query(max_length=40, examples=["login.failed"])] = None,
    actor_id: int | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=security_audit.MAX_LIMIT)] = 100,
    after: Annotated[int | None, Query(description="`next` of the previous page")] = None,
    format: Literal["json", "csv"] = "json",
) -> dict[str, Any] | StreamingResponse:
    """Security audit entries, newest first: ``{items, next}``, or a CSV file."""
    selection = security_audit.AuditFilter(
        action=action, actor_id=actor_id, since=since, until=until
    )
    if format == "csv":
        return StreamingResponse(
            security_audit.export_csv(workspace, selection, caller=caller),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="security-audit.csv"'},
        )
    return security_audit.list_entries(
        workspace, selection, caller=caller, limit=limit, after=after
    )

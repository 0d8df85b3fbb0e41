"""Related lists and attachments on the record page of the staff web app."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request

from formloom.platform.web import views
from formloom.platform.web.session import WebSession

router = APIRouter(prefix="/app", include_in_schema=False)


def record_panel(
    request: Request,
    session: WebSession,
    env: str,
    view: views.EntityView,
    record: Mapping[str, Any],
) -> Mapping[str, Any] | None:
    """What the record page shows of this area (None: nothing)."""
    return None

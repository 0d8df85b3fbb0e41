"""Kanban boards of the staff web app: records as cards in columns of a choice field."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/app", include_in_schema=False)

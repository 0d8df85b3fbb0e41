"""The staff web app: server-rendered pages (Jinja2 + htmx) under ``/app``.

One router per area; :mod:`formloom.platform.web.routes` (home, record pages
and forms) comes last because its ``/{env}/{entity}`` patterns are the most general.
See the README's "Staff web app" section.
"""

from fastapi import APIRouter

from formloom.platform.web import approvals, boards, lists, routes, signin

router = APIRouter()
for area in (signin, approvals, boards, lists, routes):
    router.include_router(area.router)

__all__ = ["router"]

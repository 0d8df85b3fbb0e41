"""The staff web app: server-rendered pages (Jinja2 + htmx) under ``/app``.

See :mod:`formloom.platform.web.routes` and the README's "Staff web app" section.
"""

from formloom.platform.web.routes import router

__all__ = ["router"]

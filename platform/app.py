"""The platform's FastAPI application factory.

``build_app`` wires the workspace, error handling and the platform's own routes;
surfaces built on the platform (the designer API) pass their routers in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from formloom.platform import (
    api_admin_audit,
    api_admin_teams,
    api_admin_users,
    api_auth,
    api_directory,
    api_env_audit,
    api_environments,
    api_files,
    api_flows,
    api_import_export,
    api_jobs,
    api_record_list,
    api_records,
    api_regions,
)
from formloom.platform.access import require_entry
from formloom.platform.auth_deps import PrincipalDep
from formloom.platform.database import Workspace
from formloom.platform.environments import PRODUCTION, initialise_workspace
from formloom.platform.http_errors import install_error_handlers
from formloom.platform.metastore import MetaStore
from formloom.platform.openapi_entities import with_entities
from formloom.platform.settings import Settings
from formloom.platform.web import router as web_router
from formloom.platform.worker import Worker

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).with_name("static")


def build_app(
    settings: Settings,
    *,
    routers: Iterable[APIRouter] = (),
    run_worker: bool | None = None,
) -> FastAPI:
    """Create the HTTP app. ``run_worker`` (default: on SQLite) runs a job worker in-process."""
    workspace = Workspace(settings)
    initialise_workspace(workspace)
    in_process_worker = workspace.is_sqlite if run_worker is None else run_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = _start_worker(workspace, stop) if in_process_worker else None
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=10)
            workspace.dispose()

    app = FastAPI(
        title="formloom",
        version="0.1.0",
        description="No-code CRM builder: metadata in, working apps out.",
        lifespan=lifespan,
        docs_url=None,
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.state.workspace = workspace
    app.state.metastore = MetaStore(workspace)
    install_error_handlers(app)
    # The records routes first: a request is matched against the routes in order, and
    # these serve most requests (no other route's path can match theirs).
    # Import/export before the single-record routes: `/records/{entity}/export` must not
    # be read as an id.
    app.include_router(api_import_export.router)
    app.include_router(api_records.router)
    app.include_router(api_record_list.router)
    app.include_router(api_auth.router)
    app.include_router(api_admin_users.router)
    app.include_router(api_admin_teams.router)
    app.include_router(api_admin_audit.router)
    app.include_router(api_environments.router)
    app.include_router(api_jobs.router)
    app.include_router(api_files.router)
    app.include_router(api_regions.router)
    app.include_router(api_directory.router)
    app.include_router(api_env_audit.router)
    app.include_router(api_flows.router)
    app.include_router(web_router)
    for router in routers:
        app.include_router(router)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI served from vendored assets (no CDN: machines may be offline)."""
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="formloom API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )

    base_openapi = app.openapi

    def openapi_with_entities() -> dict[str, Any]:
        return with_entities(base_openapi(), workspace, PRODUCTION)

    app.openapi = openapi_with_entities  # type: ignore[method-assign]

    @app.get("/api/envs/{env}/openapi.json", tags=["platform"])
    def environment_openapi(env: str, principal: PrincipalDep) -> dict[str, Any]:
        """The OpenAPI document with the entities published in ``env``."""
        require_entry(workspace, env=env, principal=principal)
        return with_entities(base_openapi(), workspace, env)

    @app.get("/api/health", tags=["platform"])
    def health() -> dict[str, str]:
        return {"status": "ok", "database": workspace.dialect}

    return app


def _start_worker(workspace: Workspace, stop: threading.Event) -> threading.Thread:
    worker = Worker(workspace)
    thread = threading.Thread(target=worker.run_forever, args=(stop,), daemon=True, name="worker")
    thread.start()
    log.info("in-process job worker started")
    return thread

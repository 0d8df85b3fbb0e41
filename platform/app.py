"""The platform's FastAPI application factory.

``build_app`` wires the workspace, error handling and the platform's own routes;
surfaces built on the platform (the designer API) pass their routers in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from formloom.platform import api_environments, api_jobs
from formloom.platform.database import Workspace
from formloom.platform.environments import initialise_workspace
from formloom.platform.http_errors import install_error_handlers
from formloom.platform.metastore import MetaStore
from formloom.platform.settings import Settings
from formloom.platform.worker import Worker

log = logging.getLogger(__name__)


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
    )
    app.state.workspace = workspace
    app.state.metastore = MetaStore(workspace)
    install_error_handlers(app)
    app.include_router(api_environments.router)
    app.include_router(api_jobs.router)
    for router in routers:
        app.include_router(router)

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

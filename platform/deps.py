"""Typed FastAPI dependencies shared by the platform's and the designer's routes.

They read no database, so they are ``async def``: FastAPI calls them in the event
loop instead of sending each to its thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from formloom.platform.database import Workspace
from formloom.platform.metastore import MetaStore


async def get_workspace(request: Request) -> Workspace:
    workspace: Workspace = request.app.state.workspace
    return workspace


async def get_metastore(request: Request) -> MetaStore:
    store: MetaStore = request.app.state.metastore
    return store


WorkspaceDep = Annotated[Workspace, Depends(get_workspace)]
MetaStoreDep = Annotated[MetaStore, Depends(get_metastore)]

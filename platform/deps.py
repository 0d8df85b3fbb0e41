"""Typed FastAPI dependencies shared by the platform's and the designer's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from formloom.platform.database import Workspace
from formloom.platform.metastore import MetaStore


def get_workspace(request: Request) -> Workspace:
    workspace: Workspace = request.app.state.workspace
    return workspace


def get_metastore(request: Request) -> MetaStore:
    store: MetaStore = request.app.state.metastore
    return store


WorkspaceDep = Annotated[Workspace, Depends(get_workspace)]
MetaStoreDep = Annotated[MetaStore, Depends(get_metastore)]

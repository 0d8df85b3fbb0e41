"""Authoring routes for metadata documents: schemas, drafts, publish, history, rollback.

- ``GET  /api/meta/schemas`` and ``/api/meta/schemas/{kind}``: the published meta-schemas.
- ``GET  /api/envs/{env}/meta[/{kind}]``: documents and their state.
- ``GET|PUT|DELETE /api/envs/{env}/meta/{kind}/{name}``: read, save a draft, remove.
- ``POST …/{name}/validate``, ``…/publish``, ``…/rollback``; ``GET …/versions[/{n}]``.

Everything under ``/api/envs/{env}/meta`` needs the ``manage_metadata``
permission in that environment; publishing, rolling back or removing a
document in ``production`` also needs ``publish_production``. Publishes record
who published (``published_by``). The meta-schemas are public.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field

from formloom.engine.meta import document_kinds
from formloom.platform.access import require_permission
from formloom.platform.auth_deps import LangDep, PrincipalDep
from formloom.platform.deps import MetaStoreDep, WorkspaceDep
from formloom.platform.environments import PRODUCTION
from formloom.platform.metastore import PublishOptions, kind_of
from formloom.platform.principal import Principal

router = APIRouter(tags=["metadata"])
DocumentBody = Annotated[Any, Body(description="The metadata document (JSON object)")]


class PublishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: bool = Field(default=False, description="Accept type changes that lose data")
    purge: bool = Field(default=False, description="Drop removed fields' columns for good")
    comment: str = Field(default="", max_length=500)


class RollbackRequest(PublishRequest):
    version: int = Field(ge=1, description="The version to publish again")


def metadata_manager(
    env: str, principal: PrincipalDep, workspace: WorkspaceDep, lang: LangDep
) -> Principal:
    """The caller, when they may manage metadata in ``env``."""
    require_permission(
        workspace, env=env, principal=principal, permission="manage_metadata", lang=lang
    )
    return principal


ManagerDep = Annotated[Principal, Depends(metadata_manager)]


def metadata_publisher(
    env: str, principal: ManagerDep, workspace: WorkspaceDep, lang: LangDep
) -> Principal:
    """The caller, when they may also publish in ``env`` (production needs more)."""
    if env == PRODUCTION:
        require_permission(
            workspace, env=env, principal=principal, permission="publish_production", lang=lang
        )
    return principal


PublisherDep = Annotated[Principal, Depends(metadata_publisher)]


def _options(request: PublishRequest, principal: Principal) -> PublishOptions:
    return PublishOptions(
        force=request.force,
        purge=request.purge,
        comment=request.comment,
        actor=principal.login,
    )


@router.get("/api/meta/schemas")
def list_schemas() -> dict[str, list[str]]:
    return {"kinds": document_kinds.names()}


@router.get("/api/meta/schemas/{kind}")
def get_schema(kind: str) -> dict[str, Any]:
    return kind_of(kind).json_schema()


@router.get("/api/envs/{env}/meta")
def list_documents(env: str, store: MetaStoreDep, _: ManagerDep) -> list[dict[str, Any]]:
    return store.list_documents(env)


@router.get("/api/envs/{env}/meta/{kind}")
def list_documents_of_kind(
    env: str, kind: str, store: MetaStoreDep, _: ManagerDep
) -> list[dict[str, Any]]:
    return store.list_documents(env, kind)


@router.get("/api/envs/{env}/meta/{kind}/{name}")
def get_document(
    env: str, kind: str, name: str, store: MetaStoreDep, _: ManagerDep
) -> dict[str, Any]:
    return store.get(env, kind, name)


@router.put("/api/envs/{env}/meta/{kind}/{name}")
def save_draft(
    env: str, kind: str, name: str, store: MetaStoreDep, _: ManagerDep, body: DocumentBody
) -> dict[str, Any]:
    """Save a draft (kept even when invalid); the response lists every problem found."""
    return store.save_draft(env, kind, name, body)


@router.post("/api/envs/{env}/meta/{kind}/{name}/validate")
def validate_document(
    env: str, kind: str, name: str, store: MetaStoreDep, _: ManagerDep, body: DocumentBody
) -> dict[str, Any]:
    """Check a document as if it were published now; nothing is saved."""
    if isinstance(body, dict):
        body = {**body, "name": body.get("name", name)}
    issues = store.validate(env, kind, body)
    return {"valid": not issues, "errors": [i.as_dict() for i in issues]}


@router.post("/api/envs/{env}/meta/{kind}/{name}/publish")
def publish(
    env: str,
    kind: str,
    name: str,
    store: MetaStoreDep,
    principal: PublisherDep,
    request: PublishRequest | None = None,
) -> dict[str, Any]:
    """Publish the draft atomically (for entities: the table changes in the same transaction)."""
    options = _options(request or PublishRequest(), principal)
    return store.publish(env, kind, name, options).as_dict()


@router.get("/api/envs/{env}/meta/{kind}/{name}/versions")
def list_versions(
    env: str, kind: str, name: str, store: MetaStoreDep, _: ManagerDep
) -> list[dict[str, Any]]:
    return store.versions(env, kind, name)


@router.get("/api/envs/{env}/meta/{kind}/{name}/versions/{version}")
def get_version(
    env: str, kind: str, name: str, version: int, store: MetaStoreDep, _: ManagerDep
) -> dict[str, Any]:
    return store.version(env, kind, name, version)


@router.post("/api/envs/{env}/meta/{kind}/{name}/rollback")
def rollback(
    env: str,
    kind: str,
    name: str,
    request: RollbackRequest,
    store: MetaStoreDep,
    principal: PublisherDep,
) -> dict[str, Any]:
    """Publish an earlier version again as a new version."""
    options = _options(request, principal)
    return store.rollback(env, kind, name, request.version, options).as_dict()


@router.delete("/api/envs/{env}/meta/{kind}/{name}")
def remove_document(
    env: str,
    kind: str,
    name: str,
    store: MetaStoreDep,
    principal: PublisherDep,
    purge: bool = False,
) -> dict[str, Any]:
    """Remove a published document: soft (data kept) unless ``purge=true``."""
    options = PublishOptions(purge=purge, actor=principal.login)
    return store.remove(env, kind, name, options).as_dict()

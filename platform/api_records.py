"""HTTP routes for records of an environment: ``/api/envs/{env}/...``.

- ``GET  entities/{entity}/schema``: JSON Schema of the entity's records.
- ``POST records/{entity}``: create (201, ``Location``, ``ETag``).
- ``POST records/{entity}/bulk``: creates, updates and deletes in one transaction.
- ``GET  records/{entity}/recycle-bin``: deleted records, most recent first.
- ``GET|PATCH|PUT|DELETE records/{entity}/{id}``: read, change (``version`` in the
  body or ``If-Match: "<version>"``), soft delete (``?purge=true``: remove a
  deleted record for good).
- ``POST records/{entity}/{id}/restore``; ``GET records/{entity}/{id}/history``.
- ``POST records/{entity}/transfer`` (``{ids, owner_id}``) and
  ``POST records/{entity}/{id}/transfer`` (``{owner_id, version?}``): new owner.

Every route needs a credential (session cookie, bearer token or API key); the
records service authenticates it inside its own transaction
(:mod:`formloom.platform.env_transaction`) and checks what the caller may do
(:mod:`formloom.platform.access`).

Routes and dependencies are ``async def``: the dependencies read no database, and
the routes run the service, which does, in the thread pool themselves. A request
then switches threads once; a plain ``def`` route costs a switch for each plain
dependency, one for the route and one more for validating its response.

``Accept-Language: zh…`` gives Chinese messages. Errors are problem+json; a
stale update's 409 carries the record as it is now in ``current``; a
``duplicate_warning`` 409 lists the records that ``warn`` duplicate rules found
in ``duplicates``: send ``X-Formloom-Confirm-Duplicates: true`` (or
``?confirm_duplicates=true``) with the same request to save anyway.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from formloom.engine.errors import Issue
from formloom.platform import records
from formloom.platform.auth_deps import (
    CredentialDep,
    CredentialRoute,
    LangDep,
    unchecked_credential_error,
)
from formloom.platform.deps import WorkspaceDep
from formloom.platform.errors import Invalid, PlatformError
from formloom.platform.http_errors import PROBLEM, problem


class _RecordRoute(CredentialRoute):
    """Renders errors that carry ``details`` (e.g. ``current``) as problem+json with them."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except PlatformError as exc:
                details: dict[str, Any] = getattr(exc, "details", {})
                if not details:
                    raise
                if refused := await unchecked_credential_error(request):
                    raise refused from None
                return _problem_with(exc, details)

        return handle


def _problem_with(exc: PlatformError, details: dict[str, Any]) -> JSONResponse:
    issues = exc.issues or [Issue("", exc.code, exc.message)]
    rendered = problem(exc.status, type(exc).__name__, exc.message, exc.code, issues)
    body = {**json.loads(bytes(rendered.body)), **details}
    headers = {}
    current = details.get("current")
    if isinstance(current, dict) and "version" in current:
        headers["ETag"] = _etag(current)
    return JSONResponse(body, status_code=exc.status, media_type=PROBLEM, headers=headers)


router = APIRouter(prefix="/api/envs/{env}", tags=["records"], route_class=_RecordRoute)


async def if_match_version(if_match: Annotated[str | None, Header()] = None) -> int | None:
    """The record version named by ``If-Match: "<version>"`` (ETag from GET), or None."""
    if if_match is None:
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or int(tag) < 1:
        message = (
            f"If-Match {if_match!r} does not name a record version: send the ETag a GET "
            'returned, e.g. If-Match: "3"'
        )
        raise Invalid(message, issues=[Issue("/headers/If-Match", "invalid_if_match", message)])
    return int(tag)


async def confirmed_duplicates(
    x_formloom_confirm_duplicates: Annotated[
        str | None, Header(description="`true`: save even if `warn` duplicate rules find records")
    ] = None,
    confirm_duplicates: Annotated[
        bool, Query(description="Same as the X-Formloom-Confirm-Duplicates header")
    ] = False,
) -> bool:
    """Whether the client confirmed saving a record that ``warn`` duplicate rules find."""
    header = (x_formloom_confirm_duplicates or "").strip().lower()
    if header not in ("", "true", "1", "false", "0"):
        message = (
            f"X-Formloom-Confirm-Duplicates {x_formloom_confirm_duplicates!r} is not true or false"
        )
        issue = Issue("/headers/X-Formloom-Confirm-Duplicates", "invalid_header", message)
        raise Invalid(message, issues=[issue])
    return confirm_duplicates or header in ("true", "1")


ConfirmDep = Annotated[bool, Depends(confirmed_duplicates)]
IfMatchDep = Annotated[int | None, Depends(if_match_version)]
RecordBody = Annotated[Any, Body(description="Field values (JSON object); `version` on updates")]


class BulkRequest(BaseModel):
    """Rows to write in one transaction; at most 1000 in all."""

    model_config = ConfigDict(extra="forbid")

    create: list[Any] = Field(default_factory=list, description="New records' field values")
    update: list[Any] = Field(
        default_factory=list, description="`id`, `version` and the fields to change"
    )
    delete: list[Any] = Field(default_factory=list, description="`id` and optionally `version`")


def _etag(record: dict[str, Any]) -> str:
    return f'"{record["version"]}"'


@router.get("/entities/{entity}/schema")
async def get_entity_schema(
    env: str, entity: str, workspace: WorkspaceDep, credential: CredentialDep, lang: LangDep
) -> Any:
    """JSON Schema (2020-12) of the entity's records as the caller sees them."""
    return await run_in_threadpool(
        records.entity_schema, workspace, env=env, entity=entity, principal=credential, lang=lang
    )


@router.post("/records/{entity}", status_code=201)
async def create_record(
    env: str,
    entity: str,
    payload: RecordBody,
    workspace: WorkspaceDep,
    credential: CredentialDep,
    lang: LangDep,
    confirm: ConfirmDep,
    response: Response,
) -> dict[str, Any]:
    """Create a record; every problem of the payload is reported together (422)."""
    record = await run_in_threadpool(
        records.create_record,
        workspace,
        env=env,
        entity=entity,
        payload=payload,
        principal=credential,
        lang=lang,
        confirm_duplicates=confirm,
    )
    response.headers["Location"] = f"/api/envs/{env}/records/{entity}/{record['id']}"
    response.headers["ETag"] = _etag(record)
    return record


@router.post("/records/{entity}/bulk")
async def bulk_write(
    env: str,
    entity: str,
    body: BulkRequest,
    workspace: WorkspaceDep,
    credential: CredentialDep,
    lang: LangDep,
    confirm: ConfirmDep,
) -> dict[str, list[dict[str, Any]]]:
    """All rows or none: a failing row makes the whole batch fail with every row's errors."""
    return await run_in_threadpool(
        records.bulk_write,
        workspace,
        env=env,
        entity=entity,
        create=body.create,
        update=body.update,
        delete=body.delete,
        principal=credential,
        lang=lang,
        confirm_duplicates=confirm,
    )


class TransferRequest(BaseModel):
    """Records to give to another owner, in one transaction."""

    model_config = ConfigDict(extra="forbid")

    ids: list[Any] = Field(description="Ids of the records (at most 1000)")
    owner_id: Any = Field(description="The user who will own them")


class TransferOne(BaseModel):
    """The new owner of one record."""

    model_config = ConfigDict(extra="forbid")

    owner_id: Any = Field(description="The user who will own the record")
    version: int | None = Field(default=None, description="Refuse if the record changed since")


@router.post("/records/{entity}/transfer")
async def transfer_records(
    env: str,
    entity: str,
    body: TransferRequest,
    workspace: WorkspaceDep,
    credential: CredentialDep,
    lang: LangDep,
) -> dict[str, list[dict[str, Any]]]:
    """Give records to another owner: all or none, each refusal listed (audited per record)."""
    done = await run_in_threadpool(
        records.transfer_owner,
        workspace,
        env=env,
        entity=entity,
        record_ids=body.ids,
        owner_id=body.owner_id,
        principal=credential,
        lang=lang,
    )
    return {"items": done}


@router.post("/records/{entity}/{record_id}/transfer")
async def transfer_record(
    env: str,
    entity: str,
    record_id: int,
    body: TransferOne,
    workspace: WorkspaceDep,
    credential: CredentialDep,
    lang: LangDep,
    response: Response,
) -> dict[str, Any]:
    """Give one record to another owner."""
    (record,) = await run_in_threadpool(
        records.transfer_owner,
        workspace,
        env=env,
        entity=entity,
        record_ids=[record_id],
        owner_id=body.owner_id,
        version=body.version,
        principal=credential,
        lang=lang,
    )
    response.headers["ETag"] = _etag(record)
    return record


@router.get("/records/{entity}/recycle-bin")
async def recycle_bin(
    env: str,
    entity: str,
    workspace: WorkspaceDep,
    credential: CredentialDep,
    limit: Annotated[int, Query(ge=1, le=records.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the last page")] = None,
) -> dict[str, Any]:
    """Deleted records, most recently deleted first."""
    return await run_in_threadpool(
        records.recycle_bin,
        workspace,
        env=env,
        entity=entity,
        principal=credential,
        limit=limit,
        cursor=cursor,
    )


@router.get("/records/{entity}/{record_id}")
async def get_record(
    env: str,
    entity: str,
    record_id: int,
    workspace: WorkspaceDep,
    credential: CredentialDep,
    lang: LangDep,
    response: Response,
) -> dict[str, Any]:
    """One record; its version is also the ``ETag``."""
    record = await run_in_threadpool(
        records.get_record,
        workspace,
        env=env,
        entity=entity,
        record_id=record_id,
        principal=credential,
        lang=lang,
    )
    response.headers["ETag"] = _etag(record)
    return record


@router.patch("/records/{entity}/{record_id}")
async def patch_record(
    env: str,
    entity: str,
    record_id: int,
    payload: RecordBody,
    workspace: WorkspaceDep,
    credential: CredentialDep,
    lang: LangDep,
    version: IfMatchDep,
    confirm: ConfirmDep,
    response: Response,
) -> dict[str, Any]:
    """Change the fields sent; needs the version the change is based on."""
    record = await run_in_threadpool(
        records.update_record,
        workspace,
        env=env,
        entity=entity,
        record_id=record_id,
        payload=payload,
        version=version,
        replace=False,
        principal=credential,
        lang=lang,
        confirm_duplicates=confirm,
    )
    response.headers["ETag"] = _etag(record)
    return record


@router.put("/records/{entity}/{record_id}")
async def put_record(
    env: str,
    entity: str,
    record_id: int,
    payload: RecordBody,
    workspace: WorkspaceDep,
    credential: CredentialDep,
    lang: LangDep,
    version: IfMatchDep,
    confirm: ConfirmDep,
    response: Response,
) -> dict[str, Any]:
    """Replace every field but computed ones (missing ones become empty); needs the version."""
    record = await run_in_threadpool(
        records.update_record,
        workspace,
        env=env,
        entity=entity,
        record_id=record_id,
        payload=payload,
        version=version,
        replace=True,
        principal=credential,
        lang=lang,
        confirm_duplicates=confirm,
    )
    response.headers["ETag"] = _etag(record)
    return record


@router.delete("/records/{entity}/{record_id}", response_model=None)
async def delete_record(
    env: str,
    entity: str,
    record_id: int,
    workspace: WorkspaceDep,
    credential: CredentialDep,
    lang: LangDep,
    version: IfMatchDep,
    response: Response,
    purge: Annotated[
        bool, Query(description="Remove a record that is in the recycle bin for good")
    ] = False,
) -> dict[str, Any] | Response:
    """Move a record to the recycle bin (200, the deleted record), or purge it (204)."""
    if purge:
        await run_in_threadpool(
            records.purge_record,
            workspace,
            env=env,
            entity=entity,
            record_id=record_id,
            version=version,
            principal=credential,
            lang=lang,
        )
        return Response(status_code=204)
    record = await run_in_threadpool(
        records.delete_record,
        workspace,
        env=env,
        entity=entity,
        record_id=record_id,
        version=version,
        principal=credential,
        lang=lang,
    )
    response.headers["ETag"] = _etag(record)
    return record


@router.post("/records/{entity}/{record_id}/restore")
async def restore_record(
    env: str,
    entity: str,
    record_id: int,
    workspace: WorkspaceDep,
    credential: CredentialDep,
    lang: LangDep,
    version: IfMatchDep,
    response: Response,
) -> dict[str, Any]:
    """Bring a record back from the recycle bin."""
    record = await run_in_threadpool(
        records.restore_record,
        workspace,
        env=env,
        entity=entity,
        record_id=record_id,
        version=version,
        principal=credential,
        lang=lang,
    )
    response.headers["ETag"] = _etag(record)
    return record


@router.get("/records/{entity}/{record_id}/history")
async def record_history(
    env: str,
    entity: str,
    record_id: int,
    workspace: WorkspaceDep,
    credential: CredentialDep,
    lang: LangDep,
    limit: Annotated[int, Query(ge=1, le=records.MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the last page")] = None,
) -> dict[str, Any]:
    """Who changed what and when, newest first (also for deleted and purged records)."""
    return await run_in_threadpool(
        records.record_history,
        workspace,
        env=env,
        entity=entity,
        record_id=record_id,
        principal=credential,
        limit=limit,
        cursor=cursor,
        lang=lang,
    )

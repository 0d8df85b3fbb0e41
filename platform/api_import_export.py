"""HTTP routes to import records from CSV/XLSX files and to export lists of records.

- ``POST /api/envs/{env}/records/{entity}/imports``: multipart form with ``file``
  (CSV or XLSX, at most 50 MB) and ``options`` (JSON: ``mapping``, ``mode``,
  ``upsert_on``, ``lookup_by``, ``dry_run``, ``timezone``, ``sheet``). Answers
  202 with the import (``status`` queued, ``job.id``); follow it with
  ``GET /api/envs/{env}/imports/{id}`` or ``GET /api/jobs/{job_id}?env=``. A dry
  run of a small file (up to 1 MB) is answered at once: 200 with the summary.
- ``GET /api/envs/{env}/imports/{id}``: status, progress, summary and errors.
- ``GET /api/envs/{env}/imports?entity=``: recent imports.
- ``GET /api/envs/{env}/records/{entity}/export?format=csv|xlsx&headers=labels|names``
  plus the list's parameters (``where``, ``q``, ``sort``, ``fields``, simple
  filters, ``timezone``) and ``limit`` (at most that many records): the file.

Include this router **before** the records router (``api_records``): its
``GET /records/{entity}/{record_id}`` would otherwise take ``/export`` for a record id.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.datastructures import UploadFile

from formloom.engine.errors import Issue
from formloom.platform import import_files, record_export, record_import
from formloom.platform.auth_deps import LangDep, PrincipalDep
from formloom.platform.deps import WorkspaceDep
from formloom.platform.errors import Invalid
from formloom.platform.list_request import request_from_query
from formloom.platform.record_errors import say

router = APIRouter(prefix="/api/envs/{env}", tags=["import and export"])

#: Dry runs of files up to this size are answered in the request itself.
SYNC_DRY_RUN_BYTES = 1024 * 1024
#: Room for the multipart envelope and the options next to the file.
_ENVELOPE_BYTES = 64 * 1024

_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "CSV (UTF-8 or GBK) or XLSX, header in the first row",
                        },
                        "options": {
                            "type": "string",
                            "description": "JSON object: mapping, mode, upsert_on, lookup_by, "
                            "dry_run, timezone, sheet",
                            "example": json.dumps(
                                {
                                    "mapping": {"公司": "name", "备注": None},
                                    "mode": "skip_bad_rows",
                                    "upsert_on": "name",
                                    "dry_run": True,
                                },
                                ensure_ascii=False,
                            ),
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/records/{entity}/imports", status_code=202, openapi_extra=_IMPORT_BODY, response_model=None
)
async def start_import(
    env: str,
    entity: str,
    request: Request,
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    lang: LangDep,
) -> JSONResponse:
    """Upload a file to import into ``entity``; it runs as a background job."""
    limit = import_files.MAX_FILE_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + _ENVELOPE_BYTES:
        raise import_files.too_large(int(declared), limit, lang=lang)
    async with request.form(max_files=1, max_fields=4) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            message = say(
                lang,
                "send the file as the multipart form field `file`",
                "请以 multipart 表单字段 `file` 上传文件",
            )
            raise Invalid(message, issues=[Issue("/file", "missing_file", message)])
        options = _options(form.get("options"), lang)
        small = (upload.size or 0) <= SYNC_DRY_RUN_BYTES
        run_now = bool(isinstance(options, dict) and options.get("dry_run") and small)
        found = await run_in_threadpool(
            lambda: record_import.submit_import(
                workspace,
                env=env,
                entity=entity,
                upload=upload.file,
                file_name=upload.filename or "upload",
                options=options,
                principal=principal,
                lang=lang,
                run_now=run_now,
            )
        )
    location = f"/api/envs/{env}/imports/{found['id']}"
    return JSONResponse(found, status_code=200 if run_now else 202, headers={"Location": location})


@router.get("/imports/{import_id}")
def get_import(
    env: str, import_id: int, workspace: WorkspaceDep, principal: PrincipalDep
) -> dict[str, Any]:
    """An import's status, progress, column mapping and summary (errors as row, column, message)."""
    return record_import.get_import(workspace, env=env, import_id=import_id, principal=principal)


@router.get("/imports")
def list_imports(
    env: str,
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    entity: Annotated[str | None, Query(description="Only imports into this entity")] = None,
    limit: Annotated[int, Query(ge=1, le=record_import.MAX_LIST_LIMIT)] = 50,
) -> list[dict[str, Any]]:
    """Recent imports (the caller's own unless they are an admin), newest first."""
    return record_import.list_imports(
        workspace, env=env, principal=principal, entity=entity, limit=limit
    )


_EXPORT_PARAMETERS = [
    {
        "name": "format",
        "in": "query",
        "schema": {"type": "string", "enum": list(record_export.EXPORT_FORMATS)},
        "description": "csv (UTF-8 with BOM, default) or xlsx",
    },
    {
        "name": "headers",
        "in": "query",
        "schema": {"type": "string", "enum": ["labels", "names"]},
        "description": "Column headers: field labels in the request's language, or API names",
    },
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1},
        "description": "Export at most this many records (default: all that match)",
    },
]


@router.get(
    "/records/{entity}/export",
    response_class=StreamingResponse,
    openapi_extra={"parameters": _EXPORT_PARAMETERS},
)
def export_records(
    env: str,
    entity: str,
    request: Request,
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    lang: LangDep,
) -> StreamingResponse:
    """Every record matching the list's filters as a CSV or XLSX file."""
    items = request.query_params.multi_items()
    options = {name: value for name, value in items if name in ("format", "headers", "limit")}
    asked = request_from_query([(n, v) for n, v in items if n not in options])
    file_format = options.get("format", "csv")
    headers = options.get("headers", "labels")
    problems = []
    if file_format not in record_export.EXPORT_FORMATS:
        problems.append(
            Issue("/query/format", "unknown_format", f"format `{file_format}`: use csv or xlsx")
        )
    if headers not in ("labels", "names"):
        problems.append(
            Issue("/query/headers", "unknown_headers", f"headers `{headers}`: use labels or names")
        )
    max_rows = options.get("limit")
    if max_rows is not None and (not max_rows.isdigit() or int(max_rows) < 1):
        problems.append(Issue("/query/limit", "type", "limit must be a positive whole number"))
    if problems:
        raise Invalid(problems[0].message, issues=problems)
    exported = record_export.export_records(
        workspace,
        env=env,
        entity=entity,
        request=asked,
        principal=principal,
        file_format=file_format,  # type: ignore[arg-type]
        headers=headers,  # type: ignore[arg-type]
        lang=lang,
        max_rows=int(max_rows) if max_rows else None,
    )
    disposition = f"attachment; filename*=UTF-8''{quote(exported.file_name)}"
    return StreamingResponse(
        exported.chunks,
        media_type=exported.media_type,
        headers={"Content-Disposition": disposition},
    )


def _options(raw: Any, lang: str) -> Any:
    """The ``options`` form field as JSON (absent: defaults)."""
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        message = say(
            lang,
            "`options` must be a text field holding JSON",
            "`options` 应为包含 JSON 的文本字段",
        )
        raise Invalid(message, issues=[Issue("/options", "type", message)])
    try:
        return json.loads(raw)
    except ValueError as exc:
        message = say(
            lang,
            f"`options` is not valid JSON ({exc}); send an object such as "
            '{"mode": "skip_bad_rows", "dry_run": true}',
            f"`options` 不是有效的 JSON（{exc}）；请发送对象，例如 "
            '{"mode": "skip_bad_rows", "dry_run": true}',
        )
        raise Invalid(message, issues=[Issue("/options", "invalid_json", message)]) from None

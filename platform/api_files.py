"""HTTP routes for uploaded files of an environment: ``/api/envs/{env}/files``.

- ``POST files``: multipart form with one field ``file`` (at most 100 MB): 201 with
  ``{id, name, size, content_type, url, sha256, created_at, created_by}`` and
  ``Location``. Put ``{"id": …}`` in a record's file or image field to attach it;
  an upload no record holds a day later is removed (see
  :mod:`formloom.platform.orphan_files`).
- ``GET files/{id}``: the bytes, typed by what they are (sniffed at upload), as an
  attachment (``filename*=UTF-8''…``, RFC 5987: Chinese names survive).
  ``?disposition=inline`` shows raster images (PNG, JPEG, GIF, WebP) in the
  browser; everything else is always an attachment. Every download is sent with
  ``X-Content-Type-Options: nosniff`` and ``Content-Security-Policy: sandbox``, so
  a browser never runs what a file holds.
- ``GET files/{id}/meta``: what ``POST`` returned.

Files belong to their environment: another environment's id is 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from starlette.datastructures import UploadFile
from starlette.types import Message, Receive

from formloom.engine.errors import Issue
from formloom.engine.fields.files import MAX_FILE_BYTES, RASTER_IMAGE_TYPES
from formloom.platform import access, files, orphan_files
from formloom.platform.auth_deps import LangDep, PrincipalDep
from formloom.platform.deps import WorkspaceDep
from formloom.platform.errors import Invalid
from formloom.platform.record_errors import say

router = APIRouter(prefix="/api/envs/{env}/files", tags=["files"])

#: Room for the multipart envelope around the file.
_ENVELOPE_BYTES = 64 * 1024
_BODY_LIMIT = MAX_FILE_BYTES + _ENVELOPE_BYTES

_UPLOAD_BODY = {
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
                            "description": "The file, at most 100 MB",
                        }
                    },
                }
            }
        },
    }
}


@router.post("", status_code=201, openapi_extra=_UPLOAD_BODY, response_model=None)
async def upload_file(
    env: str, request: Request, workspace: WorkspaceDep, principal: PrincipalDep, lang: LangDep
) -> JSONResponse:
    """Upload one file (multipart field ``file``); attach it to records by its ``id``."""
    await run_in_threadpool(lambda: access.require_entry(workspace, env=env, principal=principal))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > _BODY_LIMIT:
        raise files.too_large(int(declared), lang=lang)
    capped = Request(request.scope, _capped(request.receive, lang))
    async with capped.form(max_files=1, max_fields=8) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            message = say(
                lang,
                "send the file as the multipart form field `file`",
                "请以 multipart 表单字段 `file` 上传文件",
            )
            raise Invalid(message, issues=[Issue("/file", "missing_file", message)])
        stored = await run_in_threadpool(
            lambda: files.store_upload(
                workspace,
                env,
                filename=upload.filename,
                content_type=upload.content_type,
                stream=upload.file,
                actor_id=principal.user_id,
                lang=lang,
            )
        )
    await run_in_threadpool(
        lambda: orphan_files.schedule_cleanup(workspace, env, now=datetime.now(UTC))
    )
    return JSONResponse(stored, status_code=201, headers={"Location": stored["url"]})


def _capped(receive: Receive, lang: str) -> Receive:
    """``receive`` refusing a request body beyond the upload limit while it arrives.

    Chunked requests carry no ``Content-Length``: this stops them before the
    multipart parser has spooled more than the limit.
    """
    received = 0

    async def capped_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > _BODY_LIMIT:
                raise files.too_large(received, lang=lang, at_least=True)
        return message

    return capped_receive


@router.get("/{file_id}", response_class=FileResponse)
def download_file(
    env: str,
    file_id: str,
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    lang: LangDep,
    disposition: Annotated[
        Literal["attachment", "inline"],
        Query(description="`inline` shows raster images in the browser; other files download"),
    ] = "attachment",
) -> FileResponse:
    """The file's bytes, typed by their sniffed content type."""
    access.require_entry(workspace, env=env, principal=principal)
    stored = files.locate_file(workspace, env, file_id, lang=lang)
    info = stored.info
    shown = disposition == "inline" and info.content_type in RASTER_IMAGE_TYPES
    return FileResponse(
        stored.path,
        media_type=info.content_type,
        headers={
            "Content-Disposition": content_disposition(
                info.name, "inline" if shown else "attachment"
            ),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "ETag": f'"{info.sha256}"',
            "Cache-Control": "private, max-age=31536000, immutable",
        },
    )


@router.get("/{file_id}/meta")
def file_meta(
    env: str, file_id: str, workspace: WorkspaceDep, principal: PrincipalDep, lang: LangDep
) -> dict[str, Any]:
    """The file's name, size, sniffed content type, SHA-256, upload time and uploader."""
    access.require_entry(workspace, env=env, principal=principal)
    return files.locate_file(workspace, env, file_id, lang=lang).info.as_json(env)


def content_disposition(name: str, disposition: str) -> str:
    """``disposition`` with the name as RFC 5987 ``filename*`` and an ASCII ``filename``."""
    fallback = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in name)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"

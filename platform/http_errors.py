"""Map domain errors to RFC 9457 problem+json responses with ``errors: [{path, code, message}]``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from formloom.engine.errors import DocumentInvalid, EngineError, Issue, pointer
from formloom.platform.auth_deps import language_of, unchecked_credential_error
from formloom.platform.column_types import DecimalOutOfRange
from formloom.platform.errors import PlatformError

PROBLEM = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str,
    code: str,
    issues: list[Issue],
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://formloom.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "errors": [i.as_dict() for i in issues],
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def platform_problem(exc: PlatformError) -> JSONResponse:
    """A platform error as problem+json."""
    issues = exc.issues or [Issue("", exc.code, exc.message)]
    return problem(exc.status, type(exc).__name__, exc.message, exc.code, issues, exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Errors become problem+json; a request whose credential was not checked yet (see
    :func:`~formloom.platform.auth_deps.unchecked_credential_error`) gets the credential's
    error instead, if it has one."""

    @app.exception_handler(PlatformError)
    async def _platform(request: Request, exc: PlatformError) -> JSONResponse:
        return platform_problem(await unchecked_credential_error(request) or exc)

    @app.exception_handler(DocumentInvalid)
    async def _document(request: Request, exc: DocumentInvalid) -> JSONResponse:
        if refused := await unchecked_credential_error(request):
            return platform_problem(refused)
        return problem(422, "DocumentInvalid", str(exc), "invalid", exc.issues)

    @app.exception_handler(EngineError)
    async def _engine(request: Request, exc: EngineError) -> JSONResponse:
        if refused := await unchecked_credential_error(request):
            return platform_problem(refused)
        return problem(
            422, type(exc).__name__, str(exc), "invalid", [Issue("", "invalid", str(exc))]
        )

    @app.exception_handler(RequestValidationError)
    async def _request(request: Request, exc: RequestValidationError) -> JSONResponse:
        if refused := await unchecked_credential_error(request):
            return platform_problem(refused)
        issues = [
            Issue(pointer(*e["loc"]), e["type"], f"{'.'.join(map(str, e['loc']))}: {e['msg']}")
            for e in exc.errors()
        ]
        return problem(422, "RequestInvalid", "the request is not valid", "invalid", issues)

    @app.exception_handler(StatementError)
    async def _statement(request: Request, exc: StatementError) -> JSONResponse:
        # A decimal too large for SQLite's scaled integers is refused when it is bound
        # (column_types.ExactDecimal); anything else a statement raises stays a 500.
        if not isinstance(exc.orig, DecimalOutOfRange):
            raise exc
        if refused := await unchecked_credential_error(request):
            return platform_problem(refused)
        message = str(exc.orig)
        if language_of(request.headers.get("accept-language")) == "zh":
            message = (
                "数值的有效位数超出 SQLite 能精确保存的范围（最多 18 位）；"
                "请减小数值或改用 PostgreSQL"
            )
        issues = [Issue("", "out_of_range", message)]
        return problem(422, "DecimalOutOfRange", message, "out_of_range", issues)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = str(exc.detail)
        return problem(
            exc.status_code, "HTTPError", detail, "http_error", [Issue("", "http", detail)]
        )

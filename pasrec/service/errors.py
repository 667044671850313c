"""Every error leaves the API as `{"error": {"code", "message", "details"}}`, never a traceback."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[dict[str, str]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details)
        self.headers = headers


def error_response(
    status: int,
    code: str,
    message: str,
    details: Sequence[dict[str, str]] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": list(details)}}
    return JSONResponse(body, status_code=status, headers=headers)


def format_loc(loc: Sequence[Any]) -> str:
    """("body", "events", 3, "timestamp") -> "body.events[3].timestamp"."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _clean_message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    # Pydantic prefixes messages raised by our own validators with "Value error, ".
    return message.removeprefix("Value error, ")


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    json_errors = [e for e in errors if e.get("type") == "json_invalid"]
    if json_errors:
        ctx = json_errors[0].get("ctx") or {}
        position = json_errors[0]["loc"][-1] if json_errors[0].get("loc") else "?"
        return error_response(
            400,
            "invalid_json",
            f"request body is not valid JSON: {ctx.get('error', 'parse error')} "
            f"(at character {position})",
        )
    details = [{"loc": format_loc(e.get("loc", ())), "message": _clean_message(e)} for e in errors]
    first = details[0]
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return error_response(
        422, "validation_error", f"{first['loc']}: {first['message']}{more}", details
    )


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _database(request: Request, exc: Exception) -> JSONResponse:
    # Unreachable, restarting or locked database: nothing was committed, so retrying is safe.
    log.warning("database error on %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        503,
        "database_unavailable",
        "the database is unavailable; retry later",
        headers={"Retry-After": "1"},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    incident = uuid.uuid4().hex[:12]
    log.error(
        "unhandled error on %s %s (incident %s)",
        request.method,
        request.url.path,
        incident,
        exc_info=exc,
    )
    return error_response(
        500, "internal_error", f"internal error; the server log has incident {incident}"
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(OperationalError, _database)
    app.add_exception_handler(Exception, _unexpected)

"""Every error is `{"error": ..., "request_id": ...}` JSON, whatever raised it (RoboTrace's shape).

Validation messages name the field and the rule, never the value sent (bodies can carry trade
secrets, so they are neither echoed nor logged).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from robotrace_assets.api.context import request_id

log = logging.getLogger("robotrace_assets.api")

UNAUTHORIZED = (
    "Missing or invalid API key. Pass it as `Authorization: Bearer rt_…` or `X-RoboTrace-Key`."
)
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="robotrace"'}


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def unauthorized() -> ApiError:
    """The one 401: missing, malformed, unknown and revoked keys are indistinguishable."""
    return ApiError(401, UNAUTHORIZED, WWW_AUTHENTICATE)


def not_found(what: str = "Episode") -> ApiError:
    return ApiError(404, f"{what} not found.")


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None):
    body = {"error": message, "request_id": request_id()}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _validation_message(error: RequestValidationError) -> str:
    problems = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(problems)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.message, error.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(400, _validation_message(error))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        messages = {404: "Not found.", 405: "Method not allowed."}
        message = messages.get(error.status_code) or str(error.detail)
        return error_response(error.status_code, message, error.headers)

    @app.exception_handler(Exception)
    async def _crash(_request: Request, error: Exception) -> JSONResponse:
        # The type only: messages of driver errors can quote parameters (request data).
        log.error("request %s failed: %s", request_id(), type(error).__name__)
        return error_response(500, "Internal error; retry with exponential backoff.")

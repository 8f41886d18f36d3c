"""The one error contract of the REST API: domain errors to statuses, one JSON envelope, no HTML under /api."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from services import errors

log = logging.getLogger(__name__)

API_PREFIX = "/api"

STATUS_BY_ERROR: dict[type[errors.DomainError], int] = {
    errors.InvalidRequestError: 400,
    errors.AuthenticationError: 401,
    errors.InsufficientCreditsError: 402,
    errors.PermissionDeniedError: 403,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.ValidationFailedError: 422,
    errors.PayloadTooLargeError: 413,
    errors.UnsupportedMediaTypeError: 415,
    errors.QuotaExceededError: 429,
    errors.UpstreamUnavailableError: 503,
}

CODE_BY_STATUS = {
    400: "invalid_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "quota_exceeded",
}


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorEnvelope(BaseModel):
    """Every error response of the API has this shape."""

    error: ErrorBody


def documented_error(description: str) -> dict[str, Any]:
    """An error response in a route's ``responses``: the envelope, with what the status means there."""
    return {"model": ErrorEnvelope, "description": description}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorEnvelope(error=ErrorBody(code=code, message=message, details=details))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def status_for(error: errors.DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]  # type: ignore[index]
    return 400


def _auth_headers(status: int) -> dict[str, str] | None:
    return {"WWW-Authenticate": "Bearer"} if status == 401 else None


async def domain_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.DomainError)
    status = status_for(exc)
    headers = _auth_headers(status) or {}
    if isinstance(exc.details, dict) and isinstance(exc.details.get("retry_after_s"), int):
        headers["Retry-After"] = str(exc.details["retry_after_s"])
    return error_response(status, exc.code, exc.message, exc.details, headers or None)


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Never echo the submitted values back: they may hold passwords or keys.
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    malformed = any(item["type"] == "json_invalid" for item in details)
    message = "request body is not valid JSON" if malformed else "request validation failed"
    return error_response(422, "malformed_json" if malformed else "validation_error", message, details)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = CODE_BY_STATUS.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers or {}) | (_auth_headers(exc.status_code) or {})
    return error_response(exc.status_code, code, message, None, headers or None)


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    request_id = uuid.uuid4().hex[:12]
    log.exception("unhandled error %s on %s %s", request_id, request.method, request.url.path)
    return error_response(500, "internal", "internal error; report the request id", {"request_id": request_id})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.DomainError, domain_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)


def add_api_fallback(app: FastAPI) -> None:
    """JSON 404/405 for any /api path no router serves (otherwise the UI mount answers with HTML).

    Must be added after the routers and before the UI is mounted.
    """
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"]

    @app.api_route(API_PREFIX, methods=methods, include_in_schema=False)
    @app.api_route(API_PREFIX + "/{path:path}", methods=methods, include_in_schema=False)
    async def api_fallback(request: Request) -> JSONResponse:
        routes = [
            route
            for route in app.router.routes
            if not isinstance(route, Mount) and getattr(route, "endpoint", None) is not api_fallback
        ]
        allowed = {
            method
            for method in methods
            if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
        }
        if allowed:
            return error_response(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here",
                {"allowed": sorted(allowed)},
                {"Allow": ", ".join(sorted(allowed))},
            )
        return error_response(404, "not_found", f"no API endpoint at {request.url.path}")

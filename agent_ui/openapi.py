"""The statuses every operation can answer with, written into the schema once instead of on every route."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

_ENVELOPE = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
_MUTATING = {"post", "put", "patch", "delete"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _ENVELOPE}


def document_common_errors(app: FastAPI) -> None:
    """422 everywhere (a path, query or header the schema refuses); 413 and ``malformed_json`` where a body is
    read; 401 and 403 where a credential is required; 403 ``cross_origin_request`` on unsafe methods."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        for operations in schema.get("paths", {}).values():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                defaults = {"422": _error("validation failed, or the body is not JSON (`malformed_json`)")}
                if "requestBody" in operation:
                    defaults["413"] = _error("the body is larger than this endpoint's limit")
                if operation.get("security"):
                    defaults["401"] = _error("not signed in, or the credential is wrong, expired or revoked")
                    defaults["403"] = _error("not allowed: a missing scope, or not an admin")
                elif method in _MUTATING:
                    defaults["403"] = _error("a cross-origin request from a browser (`cross_origin_request`)")
                for status, response in defaults.items():
                    responses.setdefault(status, response)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

"""Request models take booleans as JSON booleans only: `{"disabled": 0}` or `"false"` is a 422, never a guess."""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import services


def request_models() -> Iterator[type[BaseModel]]:
    """Every model in a services/*/schemas.py that refuses unknown fields: the ones requests are parsed into."""
    for package in pkgutil.iter_modules(services.__path__):
        try:
            module = importlib.import_module(f"services.{package.name}.schemas")
        except ModuleNotFoundError:
            continue
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value.__module__ == module.__name__
                and value.model_config.get("extra") == "forbid"
            ):
                yield value


def lax_booleans(schema: Any, path: str = "") -> Iterator[str]:
    """Where the model's validation schema takes a bool without strict mode."""
    if isinstance(schema, dict):
        if schema.get("type") == "bool" and not schema.get("strict"):
            yield path
        for key, value in schema.items():
            yield from lax_booleans(value, f"{path}.{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from lax_booleans(value, f"{path}[{index}]")


def test_there_are_request_models_with_booleans() -> None:
    names = {model.__name__ for model in request_models()}
    assert {"UserAdminUpdate", "ApiKeyUpdate", "SandboxCreate", "ExecRequest"} <= names


@pytest.mark.parametrize("model", list(request_models()), ids=lambda model: model.__name__)
def test_request_booleans_are_strict(model: type[BaseModel]) -> None:
    assert list(lax_booleans(model.__pydantic_core_schema__)) == []


@pytest.mark.parametrize(
    ("model", "field", "extra"),
    [
        ("services.auth.schemas.UserAdminUpdate", "disabled", {}),
        ("services.auth.schemas.ApiKeyUpdate", "is_active", {}),
        ("services.sandbox.schemas.SandboxCreate", "network", {}),
        ("services.sandbox.schemas.ExecRequest", "stream", {"command": "true"}),
    ],
)
def test_zero_one_and_strings_are_not_booleans(model: str, field: str, extra: dict[str, object]) -> None:
    module, _, name = model.rpartition(".")
    cls: type[BaseModel] = getattr(importlib.import_module(module), name)
    for sloppy in (0, 1, "true", "false", "1", "on", 1.0):
        with pytest.raises(ValidationError):
            cls.model_validate_json(json.dumps({**extra, field: sloppy}))
    assert getattr(cls.model_validate_json(json.dumps({**extra, field: True})), field) is True

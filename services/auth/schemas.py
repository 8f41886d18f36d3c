"""What goes in and out of the auth services (the REST layer uses these directly)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, StrictBool, field_validator

from services.auth.models import Role
from services.auth.scopes import Scope

# Whitespace spelled out, so that Python's `re` and JSON Schema's (ECMAScript) regexes agree on it: the pattern
# published in the OpenAPI schema is the very one checked here.
_WS = r"\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_WS_CHARS = (
    "\t\n\v\f\r \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
EMAIL_MAX = 254
EMAIL_PATTERN = rf"^[{_WS}]*[^@{_WS}]{{1,64}}@(?:[^@{_WS}]+\.[^@{_WS}]+|localhost)[{_WS}]*$"
_EMAIL = re.compile(EMAIL_PATTERN)
# At least one character that is not whitespace.
NOT_BLANK_PATTERN = rf"[^{_WS}]"


def _normalise_email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError("not a valid email address")
    value = value.strip(_WS_CHARS).lower()
    if len(value) > EMAIL_MAX:
        raise ValueError("not a valid email address")
    return value


PASSWORD_MIN, PASSWORD_MAX = 8, 256


def _password_length(value: SecretStr) -> SecretStr:
    length = len(value.get_secret_value())
    if not PASSWORD_MIN <= length <= PASSWORD_MAX:
        raise ValueError(f"must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long")
    return value


Email = Annotated[
    str,
    Field(
        max_length=EMAIL_MAX,
        description="an email address (local part 1-64 characters, a dotted domain or `localhost`); "
        "surrounding whitespace is removed and it is lower-cased",
        json_schema_extra={"pattern": EMAIL_PATTERN},
    ),
    AfterValidator(_normalise_email),
]
Password = Annotated[
    SecretStr,
    Field(json_schema_extra={"minLength": PASSWORD_MIN, "maxLength": PASSWORD_MAX}),
    AfterValidator(_password_length),
]


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    password: Password


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    password: Annotated[SecretStr, Field(min_length=1, max_length=256)]


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    email: str
    role: Role
    is_disabled: bool = False
    created_at: datetime
    # Filled in by the credits service once it exists; null means credits are not metered.
    balance: Decimal | None = None


class LoginResult(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a scheme name)
    expires_in: int
    user: UserRead


class UserAdminUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    disabled: StrictBool | None = None


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=128, json_schema_extra={"pattern": NOT_BLANK_PATTERN})]
    scopes: list[Scope] = Field(default_factory=lambda: [Scope.ALL], min_length=1, max_length=len(Scope))
    expires_at: datetime | None = None

    @field_validator("name")
    @classmethod
    def _strip_name(cls, value: str) -> str:
        value = value.strip(_WS_CHARS)
        if not value:
            raise ValueError("name must not be blank")
        return value

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expires_at needs a timezone (ISO 8601 with Z or an offset)")
        return value


class ApiKeyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str | None, Field(min_length=1, max_length=128)] = None
    is_active: StrictBool | None = None


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    prefix: str
    is_active: bool
    scopes: list[str]
    expires_at: datetime | None
    sandbox_id: str | None = None
    created_at: datetime
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    """The only response that carries the whole key."""

    api_key: str


@dataclass(frozen=True)
class Principal:
    """Who is calling and through what: a browser/login session or an API key."""

    user: UserRead
    via: Literal["session", "api_key"]
    credential_id: str
    scopes: list[str] = field(default_factory=lambda: [Scope.ALL.value])
    sandbox_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.user.role == Role.ADMIN

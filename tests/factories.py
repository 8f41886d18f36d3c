"""Small builders for service-level tests: principals and registered users."""

from __future__ import annotations

from datetime import UTC, datetime

from services.auth import AuthService, Principal, UserRead
from services.auth.cache import PrincipalCache
from services.auth.models import Role
from services.auth.schemas import RegisterRequest
from services.auth.tokens import TokenDigester
from services.db import Database
from services.settings import AuthSettings


def principal(
    user_id: str, *, scopes: list[str] | None = None, role: Role = Role.USER, email: str = "someone@example.com"
) -> Principal:
    """Who calls a service: a user with these API-key scopes (every scope by default)."""
    user = UserRead(id=user_id, email=email, role=role, created_at=datetime.now(UTC))
    return Principal(user=user, via="api_key" if scopes else "session", credential_id="test",
                     scopes=scopes or ["*"])  # fmt: skip


async def register(db: Database, email: str = "a@example.com", **hooks: object) -> UserRead:
    from tests.conftest import cheap_passwords

    auth = AuthService(db=db, digester=TokenDigester(b"k" * 32), principals=PrincipalCache(0),
                       settings=AuthSettings(), passwords=cheap_passwords(), **hooks)  # type: ignore[arg-type]  # fmt: skip
    return await auth.register(RegisterRequest(email=email, password="password-123"))

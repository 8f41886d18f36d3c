"""Users, sessions and API keys."""

from services.auth.api_keys import ApiKeyService
from services.auth.authz import require_admin, require_scope
from services.auth.schemas import Principal, UserRead
from services.auth.scopes import Scope
from services.auth.service import AuthService
from services.auth.throttle import LoginThrottle, LoginThrottledError, MemoryLoginThrottle

__all__ = [
    "ApiKeyService",
    "AuthService",
    "LoginThrottle",
    "LoginThrottledError",
    "MemoryLoginThrottle",
    "Principal",
    "Scope",
    "UserRead",
    "require_admin",
    "require_scope",
]

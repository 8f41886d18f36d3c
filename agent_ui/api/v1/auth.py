"""Sign-up, sign-in, sign-out and who am I."""

from __future__ import annotations

from fastapi import Request, Response, status

from agent_ui.deps import CurrentPrincipal, ServicesDep, api_router, credential_of
from agent_ui.errors import ErrorEnvelope
from agent_ui.session_cookie import clear_session_cookie, set_session_cookie
from services.auth.schemas import LoginRequest, LoginResult, RegisterRequest, UserRead

router = api_router(prefix="/auth", tags=["auth"])


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses={403: {"model": ErrorEnvelope}, 409: {"model": ErrorEnvelope}},
)
async def register(body: RegisterRequest, services: ServicesDep) -> UserRead:
    """Create a user. The first user of an instance becomes its admin."""
    return await services.auth.register(body)


THROTTLED = {
    "model": ErrorEnvelope,
    "description": "too many failed sign-ins for this account or from this client (`too_many_attempts`); "
    "`details.retry_after_s` and the `Retry-After` header say when to try again. The same for unknown emails.",
    "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}},
}


@router.post(
    "/login",
    responses={401: {"model": ErrorEnvelope}, 403: {"model": ErrorEnvelope}, 429: THROTTLED},
)
async def login(body: LoginRequest, request: Request, response: Response, services: ServicesDep) -> LoginResult:
    """Start a session: sets the HttpOnly cookie and returns the same session as a Bearer access_token.

    Failed sign-ins are throttled per account and per client address (429 `too_many_attempts`)."""
    result = await services.auth.login(
        body,
        user_agent=request.headers.get("user-agent"),
        client_ip=request.client.host if request.client else None,
    )
    set_session_cookie(
        response, result.access_token, max_age=result.expires_in, secure=services.settings.auth.cookie_secure
    )
    return result


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses={401: {"model": ErrorEnvelope}})
async def logout(principal: CurrentPrincipal, request: Request, services: ServicesDep) -> Response:
    """End the calling session at once. An API key is not a session: revoke keys at /agent/api-keys."""
    token = credential_of(request)
    if principal.via == "session" and token is not None:
        await services.auth.end_session(token)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookie(response, secure=services.settings.auth.cookie_secure)
    return response


@router.get("/me", responses={401: {"model": ErrorEnvelope}})
async def me(principal: CurrentPrincipal, services: ServicesDep) -> UserRead:
    """The caller, with their credit balance."""
    user = await services.auth.get_user(principal.user.id)
    return user.model_copy(update={"balance": (await services.credits.balance(user.id)).balance})

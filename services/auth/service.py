"""Users, sign-in and who-is-calling. Every credential check goes through :meth:`AuthService.authenticate`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlmodel import select

from services.auth import repository as repo
from services.auth.authz import require_admin
from services.auth.cache import PrincipalCache
from services.auth.models import AuthSession, LoginTicket, Role, User
from services.auth.passwords import Passwords
from services.auth.schemas import (
    LoginRequest,
    LoginResult,
    Principal,
    RegisterRequest,
    UserAdminUpdate,
    UserRead,
)
from services.auth.throttle import LoginThrottle, MemoryLoginThrottle, Outcome, account_key, client_key
from services.auth.tokens import TokenDigester, is_api_key, new_session_token
from services.clock import Clock, utcnow
from services.db.database import Database
from services.db.pagination import Page, keyset_page
from services.errors import AuthenticationError, ConflictError, NotFoundError, PermissionDeniedError
from services.ids import new_id
from services.settings import AuthSettings

# Registrations serialise on this name so that exactly one first user becomes admin.
USERS_LOCK = "auth.users"


class AuthService:
    def __init__(
        self,
        *,
        db: Database,
        digester: TokenDigester,
        settings: AuthSettings,
        principals: PrincipalCache,
        passwords: Passwords | None = None,
        throttle: LoginThrottle | None = None,
        on_register: Callable[[str], Awaitable[None]] | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._db = db
        self._principals = principals
        self._on_register = on_register
        self._digester = digester
        self._settings = settings
        self._passwords = passwords or Passwords()
        self._throttle = throttle or MemoryLoginThrottle(settings.login_throttle, clock=clock)
        self._clock = clock

    @property
    def session_ttl(self) -> timedelta:
        return timedelta(hours=self._settings.session_ttl_hours)

    # -- users -----------------------------------------------------------------------------------

    async def register(self, request: RegisterRequest) -> UserRead:
        """Create a user; the first one becomes admin. Later ones only while registration is open."""
        password_hash = await self._passwords.hash(request.password.get_secret_value())
        now = self._clock()
        async with self._db.transaction(exclusive=USERS_LOCK) as session:
            existing = await repo.count_users(session)
            if existing and not self._settings.allow_registration:
                raise PermissionDeniedError("registration is closed; ask an admin", code="registration_closed")
            if await repo.user_by_email(session, request.email) is not None:
                raise ConflictError("a user with this email exists", code="email_taken")
            user = User(
                id=new_id("usr"),
                email=request.email,
                password_hash=password_hash,
                role=Role.ADMIN if existing == 0 else Role.USER,
                created_at=now,
                updated_at=now,
            )
            session.add(user)
        if self._on_register is not None:
            await self._on_register(user.id)
        return UserRead.model_validate(user)

    async def verify_credentials(self, email: str, password: str, *, client_ip: str | None = None) -> UserRead:
        """The user with this email and password; every sign-in (REST and UI) checks credentials here.

        Throttled per account and per client before the password is looked at: LoginThrottledError (429, with
        the seconds to wait) while either is locked out, the same for an email no user has.
        """
        account, client = account_key(email), client_key(client_ip)
        await self._throttle.admit(account, client)
        outcome = Outcome.ABANDONED
        try:
            async with self._db.transaction(readonly=True) as session:
                user = await repo.user_by_email(session, account)
            if not await self._passwords.verify(user.password_hash if user else None, password) or user is None:
                outcome = Outcome.FAILED
                raise AuthenticationError("wrong email or password", code="invalid_credentials")
            outcome = Outcome.SUCCEEDED
        finally:
            await self._throttle.settle(account, client, outcome)
        if user.is_disabled:
            raise PermissionDeniedError("this account is disabled", code="account_disabled")
        return UserRead.model_validate(user)

    async def get_user(self, user_id: str) -> UserRead:
        async with self._db.transaction(readonly=True) as session:
            user = await repo.user_by_id(session, user_id)
        if user is None:
            raise NotFoundError("user not found")
        return UserRead.model_validate(user)

    async def list_users(self, actor: Principal, *, limit: int, cursor: str | None) -> Page[UserRead]:
        """Admins only."""
        require_admin(actor)
        async with self._db.transaction(readonly=True) as session:
            rows, next_cursor = await keyset_page(
                session, select(User), created_at=User.created_at, row_id=User.id, limit=limit, cursor=cursor
            )
        return Page(items=[UserRead.model_validate(row) for row in rows], next_cursor=next_cursor)

    async def update_user(self, actor: Principal, user_id: str, update: UserAdminUpdate) -> UserRead:
        """Admins only: change a role or disable a user. Disabling ends their sessions; the last active admin stays."""
        require_admin(actor)
        async with self._db.transaction(exclusive=USERS_LOCK) as session:
            user = await repo.user_by_id(session, user_id)
            if user is None:
                raise NotFoundError("user not found")
            losing_admin = (
                user.role == Role.ADMIN
                and not user.is_disabled
                and (update.role == Role.USER or update.disabled is True)
            )
            if losing_admin and await repo.count_active_admins(session) <= 1:
                raise ConflictError("the last active admin cannot be demoted or disabled", code="last_admin")
            if update.disabled is True and user.id == actor.user.id:
                raise ConflictError("you cannot disable yourself", code="self_disable")
            if update.role is not None:
                user.role = update.role
            if update.disabled is not None:
                user.is_disabled = update.disabled
                if update.disabled:
                    await repo.delete_sessions_of(session, user.id)
            user.updated_at = self._clock()
            session.add(user)
        self._principals.clear()
        return UserRead.model_validate(user)

    # -- sessions --------------------------------------------------------------------------------

    async def login(
        self, request: LoginRequest, *, user_agent: str | None = None, client_ip: str | None = None
    ) -> LoginResult:
        """Check the credentials (throttled, see :meth:`verify_credentials`) and start a session."""
        user = await self.verify_credentials(request.email, request.password.get_secret_value(), client_ip=client_ip)
        token = await self.start_session(user.id, user_agent=user_agent)
        return LoginResult(access_token=token, expires_in=int(self.session_ttl.total_seconds()), user=user)

    async def start_session(self, user_id: str, *, user_agent: str | None = None) -> str:
        """A new server-side session; returns its token (shown to the client once, stored as a digest)."""
        token = new_session_token()
        now = self._clock()
        async with self._db.transaction() as session:
            session.add(
                AuthSession(
                    id=new_id("ses"),
                    user_id=user_id,
                    token_digest=self._digester.digest(token),
                    created_at=now,
                    expires_at=now + self.session_ttl,
                    user_agent=(user_agent or "")[:256] or None,
                )
            )
        return token

    async def end_session(self, token: str) -> None:
        async with self._db.transaction() as session:
            found = await repo.session_with_user(session, self._digester.digest(token))
            if found is not None:
                await repo.delete_session(session, found[0].id)
        self._principals.clear()

    async def issue_login_ticket(self, user_id: str) -> str:
        """A one-time ticket the browser trades for a session cookie over plain HTTP."""
        ticket = new_session_token()
        async with self._db.transaction() as session:
            session.add(
                LoginTicket(
                    digest=self._digester.digest(ticket),
                    user_id=user_id,
                    expires_at=self._clock() + timedelta(seconds=self._settings.login_ticket_ttl_s),
                )
            )
        return ticket

    async def redeem_login_ticket(self, ticket: str, *, user_agent: str | None = None) -> str:
        async with self._db.transaction() as session:
            user_id = await repo.take_ticket(session, self._digester.digest(ticket), self._clock())
            user = await repo.user_by_id(session, user_id) if user_id else None
        if user is None or user.is_disabled:
            raise AuthenticationError("this sign-in link has expired; sign in again", code="ticket_invalid")
        return await self.start_session(user.id, user_agent=user_agent)

    async def purge_expired(self) -> None:
        async with self._db.transaction() as session:
            await repo.purge_expired(session, self._clock())

    # -- who is calling --------------------------------------------------------------------------

    async def authenticate(self, token: str) -> Principal:
        """The principal behind a session token or an ``sk_`` key; AuthenticationError otherwise."""
        if not token:
            raise AuthenticationError("not signed in")
        now = self._clock()
        digest = self._digester.digest(token)
        if (cached := self._principals.get(digest, now)) is not None:
            return cached
        if is_api_key(token):
            return await self._authenticate_api_key(digest, now)
        async with self._db.transaction(readonly=True) as session:
            found = await repo.session_with_user(session, digest)
        if found is None:
            raise AuthenticationError("session is not valid; sign in again", code="invalid_session")
        auth_session, user = found
        if auth_session.expires_at <= now:
            raise AuthenticationError("session has expired; sign in again", code="session_expired")
        if user.is_disabled:
            raise AuthenticationError("this account is disabled", code="account_disabled")
        principal = Principal(user=UserRead.model_validate(user), via="session", credential_id=auth_session.id)
        self._principals.put(digest, principal, expires_at=auth_session.expires_at)
        return principal

    async def _authenticate_api_key(self, digest: str, now: datetime) -> Principal:
        async with self._db.transaction(readonly=True) as session:
            found = await repo.api_key_with_user(session, digest)
        if found is None or found[0].revoked_at is not None:
            raise AuthenticationError("API key is not valid", code="invalid_api_key")
        key, user = found
        if not key.is_active:
            raise AuthenticationError("API key is deactivated", code="api_key_inactive")
        if key.expires_at is not None and key.expires_at <= now:
            raise AuthenticationError("API key has expired", code="api_key_expired")
        if user.is_disabled:
            raise AuthenticationError("this account is disabled", code="account_disabled")
        interval = timedelta(seconds=self._settings.api_key_last_used_interval_s)
        if key.last_used_at is None or key.last_used_at < now - interval:
            async with self._db.transaction() as session:
                await repo.touch_api_key(session, key.id, now, now - interval)
        principal = Principal(
            user=UserRead.model_validate(user),
            via="api_key",
            credential_id=key.id,
            scopes=list(key.scopes),
            sandbox_id=key.sandbox_id,
        )
        self._principals.put(digest, principal, expires_at=key.expires_at)
        return principal

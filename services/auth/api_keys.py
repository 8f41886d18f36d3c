"""API keys: minted once, stored as digests, always scoped to their owner."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.auth import repository as repo
from services.auth.cache import PrincipalCache
from services.auth.models import ApiKey
from services.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, ApiKeyUpdate, Principal
from services.auth.scopes import Scope, grants
from services.auth.tokens import API_KEY_DISPLAY_LENGTH, TokenDigester, new_api_key
from services.clock import Clock, utcnow
from services.db.database import Database
from services.db.pagination import Page, keyset_page
from services.errors import NotFoundError, PermissionDeniedError, ValidationFailedError
from services.ids import new_id


class ApiKeyService:
    def __init__(
        self, *, db: Database, digester: TokenDigester, principals: PrincipalCache, clock: Clock = utcnow
    ) -> None:
        self._db = db
        self._principals = principals
        self._digester = digester
        self._clock = clock

    async def create(
        self, principal: Principal, request: ApiKeyCreate, *, sandbox_id: str | None = None
    ) -> ApiKeyCreated:
        """Mint a key. A key may only mint keys with scopes it holds itself."""
        now = self._clock()
        if request.expires_at is not None and request.expires_at <= now:
            raise ValidationFailedError("expires_at must be in the future", code="expires_in_past")
        scopes = sorted({scope.value for scope in request.scopes})
        if principal.via == "api_key" and not all(grants(principal.scopes, Scope(s)) for s in scopes):
            raise PermissionDeniedError("a key cannot grant scopes it does not hold", code="scope_escalation")
        token = new_api_key()
        key = ApiKey(
            id=new_id("key"),
            user_id=principal.user.id,
            api_key=self._digester.digest(token),
            prefix=token[:API_KEY_DISPLAY_LENGTH],
            name=request.name,
            scopes=scopes,
            expires_at=request.expires_at,
            sandbox_id=sandbox_id,
            created_at=now,
        )
        async with self._db.transaction() as session:
            session.add(key)
        return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), api_key=token)

    async def list(self, user_id: str, *, limit: int, cursor: str | None) -> Page[ApiKeyRead]:
        statement = select(ApiKey).where(ApiKey.user_id == user_id, col(ApiKey.revoked_at).is_(None))
        async with self._db.transaction(readonly=True) as session:
            rows, next_cursor = await keyset_page(
                session, statement, created_at=ApiKey.created_at, row_id=ApiKey.id, limit=limit, cursor=cursor
            )
        return Page(items=[ApiKeyRead.model_validate(row) for row in rows], next_cursor=next_cursor)

    async def get(self, user_id: str, key_id: str) -> ApiKeyRead:
        async with self._db.transaction(readonly=True) as session:
            key = await self._owned(session, user_id, key_id)
        return ApiKeyRead.model_validate(key)

    async def update(self, user_id: str, key_id: str, update: ApiKeyUpdate) -> ApiKeyRead:
        async with self._db.transaction() as session:
            key = await self._owned(session, user_id, key_id)
            if update.name is not None:
                key.name = update.name.strip() or key.name
            if update.is_active is not None:
                key.is_active = update.is_active
            session.add(key)
        self._principals.clear()
        return ApiKeyRead.model_validate(key)

    async def revoke(self, user_id: str, key_id: str) -> None:
        """Revoked keys stop working at once and disappear from lists; the row stays for the record."""
        async with self._db.transaction() as session:
            key = await self._owned(session, user_id, key_id)
            key.revoked_at = self._clock()
            key.is_active = False
            session.add(key)
        self._principals.clear()

    async def mint_for_sandbox(self, user_id: str, sandbox_id: str, scopes: tuple[Scope, ...]) -> str:
        """A key of the user's that acts in one sandbox only (its sandbox tools run there), made for what runs
        inside it; the token is returned once. Revoked with :meth:`revoke_sandbox_keys` when the sandbox goes."""
        token = new_api_key()
        key = ApiKey(id=new_id("key"), user_id=user_id, api_key=self._digester.digest(token),
                     prefix=token[:API_KEY_DISPLAY_LENGTH], name=f"sandbox {sandbox_id}",
                     scopes=sorted({scope.value for scope in scopes}), sandbox_id=sandbox_id,
                     created_at=self._clock())  # fmt: skip
        async with self._db.transaction() as session:
            session.add(key)
        return token

    async def revoke_sandbox_keys(self, user_id: str, sandbox_id: str) -> int:
        """Every live key bound to the sandbox stops working at once."""
        now = self._clock()
        async with self._db.transaction() as session:
            statement = select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.sandbox_id == sandbox_id,
                                             col(ApiKey.revoked_at).is_(None))  # fmt: skip
            keys = list((await session.exec(statement)).all())
            for key in keys:
                key.revoked_at, key.is_active = now, False
                session.add(key)
        if keys:
            self._principals.clear()
        return len(keys)

    @staticmethod
    async def _owned(session: AsyncSession, user_id: str, key_id: str) -> ApiKey:
        key = await repo.owned_api_key(session, user_id, key_id)
        if key is None:
            raise NotFoundError("API key not found")
        return key
